"""Just enough of git's pkt-line format for the HTTP adapter: the service announcement,
reading a push's command list, and writing a refusal that the git client shows."""

from __future__ import annotations

import re
from dataclasses import dataclass

FLUSH = b"0000"
_GIT_PROTOCOL = re.compile(r"^[A-Za-z0-9=:._-]{1,128}$")


def pkt(data: bytes) -> bytes:
    if len(data) > 65516:
        raise ValueError("pkt-line payload too long")
    return b"%04x" % (len(data) + 4) + data


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
