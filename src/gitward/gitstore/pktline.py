"""Just enough of git's pkt-line format for the HTTP adapter: the service announcement,
reading a push's command list, counting a fetch request's `have` lines, writing a refusal
that the git client shows, and giving each ref refused by pre-receive its own reason in
receive-pack's report (`ReportRewriter`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

FLUSH = b"0000"
_GIT_PROTOCOL = re.compile(r"^[A-Za-z0-9=:._-]{1,128}$")


def pkt(data: bytes) -> bytes:
    if len(data) > 65516:
        raise ValueError("pkt-line payload too long")
    return b"%04x" % (len(data) + 4) + data


#: The longest pkt-line git writes or reads (LARGE_PACKET_MAX), header included.
MAX_PKT_LENGTH = 65520
_HEX = b"0123456789abcdefABCDEF"
#: A run of the packets that make up nearly all of a fetch request, `want` and `have` lines
#: of SHA-1 ids without capabilities (50 bytes each): skipped in one regex step, and their
#: `have`s counted in one `count` (the text cannot occur inside such a packet).
_PLAIN_RUN = re.compile(rb"(?:0032(?:have|want) [0-9a-f]{40}\n)+")
_PLAIN_HAVE = b"0032have "


class NotPktLines(ValueError):
    """The bytes are not a pkt-line stream."""


class PktLineScanner:
    """Reads a pkt-line stream fed in pieces of any size, counting its `have` lines (v0,
    v1 and v2 fetch requests name the commits a client has this way). Refuses, with
    NotPktLines, anything that is not pkt-lines: an upload-pack request is nothing else.

    Keeps at most one packet header and a `have ` prefix between pieces: memory does not
    grow with the stream."""

    _HAVE = b"have "

    def __init__(self) -> None:
        self.haves = 0
        self._buffer = bytearray()
        self._left = 0  # bytes of the current packet's payload still to skip

    def feed(self, data: bytes) -> None:
        # NOTE: the hot loop of a fetch request's checks, once per packet: kept to a few
        # C-level operations per packet (bench/README.md, "Bounded fetch requests").
        buffer = self._buffer
        buffer += data
        pos = 0
        end = len(buffer)
        left = self._left
        haves = self.haves
        have = self._HAVE
        try:
            while True:
                if left:
                    take = min(left, end - pos)
                    pos += take
                    left -= take
                    if left:
                        break
                if end - pos < 4:
                    break
                run = _PLAIN_RUN.match(buffer, pos)
                if run is not None:
                    haves += buffer.count(_PLAIN_HAVE, pos, run.end())
                    pos = run.end()
                    continue
                header = bytes(buffer[pos : pos + 4])
                if header.translate(None, _HEX):
                    raise NotPktLines(f"bad pkt-line header {header!r}")
                length = int(header, 16)
                if length < 4:
                    if length == 3:
                        raise NotPktLines("pkt-line length 3")
                    pos += 4  # flush-pkt, delim-pkt, response-end-pkt
                    continue
                if length > MAX_PKT_LENGTH:
                    raise NotPktLines(f"pkt-line of {length} bytes")
                if end - pos < 9 and end - pos < length:
                    break  # its start arrives with the next piece
                if buffer.startswith(have, pos + 4, pos + 9):
                    haves += 1
                pos += 4
                left = length - 4
        finally:
            self._left = left
            self.haves = haves
            del buffer[:pos]

    @property
    def complete(self) -> bool:
        """The stream so far ends at a packet boundary."""
        return not self._left and not self._buffer


def service_announcement(service: str) -> bytes:
    """The first lines of a smart HTTP v0/v1 ref advertisement."""
    return pkt(f"# service={service}\n".encode()) + FLUSH


def safe_git_protocol(header: str | None) -> str | None:
    """The Git-Protocol header, passed to git only when it has the expected shape."""
    if header and _GIT_PROTOCOL.match(header):
        return header
    return None


def wants_v2(git_protocol: str | None) -> bool:
    return bool(git_protocol) and "version=2" in (git_protocol or "").split(":")


@dataclass(frozen=True)
class PushCommands:
    refs: list[str]
    capabilities: frozenset[str]


def parse_push_commands(data: bytes) -> PushCommands | None:
    """The ref updates at the start of a receive-pack request, if `data` holds all of them."""
    refs: list[str] = []
    capabilities: frozenset[str] = frozenset()
    pos = 0
    while True:
        if len(data) < pos + 4:
            return None
        try:
            length = int(data[pos : pos + 4], 16)
        except ValueError:
            return PushCommands(refs, capabilities)
        if length == 0:
            return PushCommands(refs, capabilities)
        if length < 4 or len(data) < pos + length:
            return None if length >= 4 else PushCommands(refs, capabilities)
        line = data[pos + 4 : pos + length]
        pos += length
        command, _, caps = line.partition(b"\0")
        if not refs and caps:
            capabilities = frozenset(caps.decode("utf-8", "replace").split())
        parts = command.decode("utf-8", "replace").strip().split(" ")
        if len(parts) == 3 and not parts[0].startswith("shallow"):
            refs.append(parts[2])


def push_refusal(commands: PushCommands, message: str) -> bytes:
    """A receive-pack report that refuses every ref with `message`, in the client's sideband."""
    report = pkt(f"unpack {message}\n".encode())
    for ref in commands.refs:
        report += pkt(f"ng {ref} {message}\n".encode())
    report += FLUSH
    if not ({"side-band-64k", "side-band"} & commands.capabilities):
        return report
    out = pkt(b"\x02" + f"error: {message}\n".encode())
    for start in range(0, len(report), 65000):
        out += pkt(b"\x01" + report[start : start + 65000])
    return out + FLUSH


#: The reason receive-pack reports for every ref of a push its pre-receive hook declined.
DECLINED = b"pre-receive hook declined"
#: The longest reason put in a report line (git shows it in one line of `git push`).
MAX_REASON = 400
_BAND_PAYLOAD = 65515  # LARGE_PACKET_MAX less the header and the band byte


class ReportRewriter:
    """receive-pack's answer, with the reason the server gave for each ref it refused.

    When pre-receive declines a push, git reports `ng <ref> pre-receive hook declined` for
    every ref; `git push` shows each as `! [remote rejected] <ref> (pre-receive hook
    declined)`. Given the reasons by ref (`reasons()`, read when the report arrives, which
    is after pre-receive answered), this puts each in its ref's line, so that `git push`
    shows `! [remote rejected] <ref> (<reason>)`. Everything else passes unchanged: other
    report lines, progress and errors (side-band channels 2 and 3), flushes. The report is
    side-band channel 1 when the client asked for side-band (its first packet then starts
    with a band byte), else the answer itself. Anything that is not pkt-lines is passed on
    as it is from there on. Memory: one packet of each layer."""

    def __init__(self, reasons: Callable[[], Mapping[str, str]]) -> None:
        self._reasons = reasons
        self._outer = bytearray()
        self._inner = bytearray()  # channel 1 of a side-band answer: the report's pkt-lines
        self._sideband: bool | None = None
        self._raw = False
        self._inner_raw = False

    def feed(self, data: bytes) -> bytes:
        if self._raw:
            return data
        self._outer += data
        out = bytearray()
        while len(self._outer) >= 4:
            length = _length(self._outer)
            if length is None:
                return self._give_up(out)
            if length < 4:
                out += self._outer[:4]
                del self._outer[:4]
                continue
            if len(self._outer) < length:
                break
            packet = bytes(self._outer[:length])
            del self._outer[:length]
            out += self._packet(packet)
        return bytes(out)

    def finish(self) -> bytes:
        """What is left (an unfinished packet: passed on as it came)."""
        rest = bytearray()
        if self._inner:
            rest += _banded(bytes(self._inner))
            self._inner.clear()
        rest += self._outer
        self._outer.clear()
        return bytes(rest)

    def _give_up(self, out: bytearray) -> bytes:
        self._raw = True
        out += self.finish()
        return bytes(out)

    def _packet(self, packet: bytes) -> bytes:
        payload = packet[4:]
        if self._sideband is None:
            self._sideband = payload[:1] in (b"\x01", b"\x02", b"\x03")
        if not self._sideband:
            return self._line(packet)
        if payload[:1] != b"\x01" or self._inner_raw:
            return packet
        self._inner += payload[1:]
        lines = bytearray()
        while len(self._inner) >= 4:
            length = _length(self._inner)
            if length is None:  # not a report: channel 1 passes as it is from now on
                self._inner_raw = True
                lines += self._inner
                self._inner.clear()
                break
            if length < 4:
                lines += self._inner[:4]
                del self._inner[:4]
                continue
            if len(self._inner) < length:
                break
            lines += self._line(bytes(self._inner[:length]))
            del self._inner[:length]
        return _banded(bytes(lines))

    def _line(self, packet: bytes) -> bytes:
        """One report line, `ng <ref> pre-receive hook declined` given its reason."""
        payload = packet[4:]
        if not payload.startswith(b"ng ") or not payload.rstrip(b"\n").endswith(DECLINED):
            return packet
        ref = payload[3:].rstrip(b"\n")[: -len(DECLINED)].rstrip(b" ").decode("utf-8", "replace")
        reason = self._reasons().get(ref)
        if not reason:
            return packet
        text = " ".join(reason.split())[:MAX_REASON]
        return pkt(f"ng {ref} {text}\n".encode())


def _length(buffer: bytearray) -> int | None:
    header = bytes(buffer[:4])
    if header.translate(None, _HEX):
        return None
    length = int(header, 16)
    return None if length == 3 or length > MAX_PKT_LENGTH else length


def _banded(data: bytes) -> bytes:
    """`data` as side-band channel 1 packets."""
    return b"".join(
        pkt(b"\x01" + data[start : start + _BAND_PAYLOAD])
        for start in range(0, len(data), _BAND_PAYLOAD)
    )
