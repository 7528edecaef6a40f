"""Finding strings shaped as Gitward secrets in the objects a push brings, streamed.

A push's new objects are what `git rev-list --objects <new tips> --not --all` lists while
pre-receive runs: reachable from what the push asks refs to point at, and from no ref the
repository has now. git keeps them in a quarantine directory until every hook has said yes,
so the listing runs with that directory as the object directory and the repository's own
objects as its alternate (what git gives the hooks themselves). The listing is handed out,
line by line, to `READERS` `git cat-file --batch` processes (inflating the objects is most of
the cost, and runs on as many cores), and a thread per process reads the contents from its
pipe in chunks of `CHUNK` bytes: the memory used is a chunk per reader and the matches,
whatever the size of the push or of any one file.

Only the shape and the checksum are checked here (`codec.prefix_of`), so a string that merely
looks like a secret never reaches the database; whether a candidate is live is the credential
registry's question (services/pushes.py). Scanned: every new blob (file contents), commit
and annotated tag (messages). Not read: binary blobs (a NUL byte in their first 8000 bytes,
git's own test) larger than `BINARY_SKIP_BYTES`, and trees (file names).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gitward.credentials import codec, narrowing
from gitward.gitstore.store import git_env

#: Bytes read from git at a time.
CHUNK = 1 << 20
#: Binary blobs larger than this are not read for secrets (images, archives, builds).
BINARY_SKIP_BYTES = 16 << 20
#: git's own binary test looks for a NUL byte in this many leading bytes.
BINARY_PROBE = 8000
#: git processes reading a push's objects at once, each with a thread reading its output.
READERS = min(4, os.cpu_count() or 1)
#: A push whose received packs are smaller than this is read by one process (starting more
#: costs more than they save).
SMALL_PUSH_BYTES = 8 << 20
#: Distinct checksum-valid candidates a push may carry before it cannot be checked.
MAX_CANDIDATES = 1000

_SHAPE = re.compile(rb"gw[a-z]{3}_[0-9A-Za-z]{%d}" % (codec.RANDOM_LENGTH + codec.CHECKSUM_LENGTH))
#: Narrowed tokens (credentials/narrowing.py): the same prefix and checksum, longer, of a
#: length of their own: the whole run of base62 characters after the prefix.
_NARROWED = re.compile(
    rb"(?<![0-9A-Za-z])gwnar_[0-9A-Za-z]{%d,%d}(?![0-9A-Za-z])"
    % (narrowing.MIN_LENGTH - codec.PREFIX_LENGTH, narrowing.MAX_LENGTH - codec.PREFIX_LENGTH)
)
_OVERLAP = max(codec.SECRET_LENGTH, narrowing.MAX_LENGTH) - 1
# git names the quarantine of a push `objects/tmp_objdir-incoming-XXXXXX`.
_QUARANTINE = re.compile(r"^tmp_objdir-incoming-[A-Za-z0-9_]{1,64}$")
_HEADER = re.compile(rb"^(blob|commit|tag|tree) ([0-9a-f]{40,64}) ([0-9]{1,20}) ?(.*)$")


class _Reader(Protocol):
    """What this module reads of git's output (a buffered binary pipe)."""

    def readline(self) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


class ScanFailed(RuntimeError):
    """The push's objects could not be read (git failed, or the quarantine is not one)."""


@dataclass(frozen=True)
class Candidate:
    """A checksum-valid secret found in a pushed object, and where."""

    secret: str = field(repr=False)
    prefix: str
    #: The file (as the commit that brought it names it), or `commit <id>` / `tag <name>`.
    where: str


@dataclass
class ScanResult:
    candidates: list[Candidate] = field(default_factory=list)
    objects: int = 0
    bytes_read: int = 0
    #: Where binary blobs larger than BINARY_SKIP_BYTES were not read.
    skipped: list[str] = field(default_factory=list)
    #: More than MAX_CANDIDATES distinct candidates: the push cannot be checked.
    too_many: bool = False


def quarantine_of(repository: Path, claimed: str | None) -> Path | None:
    """The push's quarantine directory as the hook reported it, checked to be one of this
    repository's (`objects/tmp_objdir-incoming-*`, a real directory); None when git used
    none. ScanFailed for anything else."""
    if not claimed:
        return None
    path = Path(claimed)
    objects = (repository / "objects").resolve()
    if (
        not path.is_absolute()
        or path.is_symlink()
        or not path.is_dir()
        or path.resolve().parent != objects
        or not _QUARANTINE.match(path.name)
    ):
        raise ScanFailed("the push's quarantine is not one of this repository's")
    return path.resolve()


def _pack_bytes(quarantine: Path | None) -> int:
    """The size of what the push brought (its pack, or its loose objects when git unpacked
    a small push, in the quarantine); without a quarantine, unknown: as large as could be."""
    if quarantine is None:
        return SMALL_PUSH_BYTES + 1
    try:
        return sum(p.stat().st_size for p in quarantine.rglob("*") if p.is_file())
    except OSError:
        return SMALL_PUSH_BYTES + 1


def _env(repository: Path, quarantine: Path | None) -> dict[str, str]:
    env = git_env()
    if quarantine is not None:
        env["GIT_OBJECT_DIRECTORY"] = str(quarantine)
        env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str((repository / "objects").resolve())
    return env


def scan_push(
    repository: Path,
    quarantine: Path | None,
    tips: Iterable[str],
    prefixes: frozenset[str],
) -> ScanResult:
    """Every candidate secret with one of `prefixes` in the objects reachable from `tips`
    and from no ref of the repository. Reads git's output as it comes; ScanFailed when git
    cannot list or read them."""
    result = ScanResult()
    wanted = [t for t in tips if set(t) != {"0"}]
    if not wanted or not prefixes:
        return result
    env = _env(repository, quarantine)
    listing = subprocess.Popen(
        ["git", "-C", str(repository), "rev-list", "--objects", "--filter=object:type=blob",
         "--stdin", "--not", "--all"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )
    assert listing.stdin is not None and listing.stdout is not None
    count = READERS if _pack_bytes(quarantine) > SMALL_PUSH_BYTES else 1
    readers = [
        subprocess.Popen(
            ["git", "-C", str(repository), "cat-file",
             "--batch=%(objecttype) %(objectname) %(objectsize) %(rest)"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        for _ in range(max(1, count))
    ]
    parts = [ScanResult() for _ in readers]
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=_read_into, args=(reader, prefixes, part, failures),
                         daemon=True)
        for reader, part in zip(readers, parts, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        listing.stdin.write("".join(f"{tip}\n" for tip in wanted).encode())
        listing.stdin.close()
        # Objects go to the readers in turn: inflating them (git's work, in its processes)
        # is most of a scan's cost, and runs on as many cores as there are readers.
        for index, line in enumerate(listing.stdout):
            stdin = readers[index % len(readers)].stdin
            assert stdin is not None
            stdin.write(line)
    except (BrokenPipeError, ValueError):
        pass  # a git process failed; its exit status says so below
    finally:
        for reader in readers:
            with contextlib.suppress(OSError, ValueError):
                if reader.stdin is not None:
                    reader.stdin.close()
        for thread in threads:
            thread.join()
        listing.stdout.close()
        statuses = [listing.wait(), *(reader.wait() for reader in readers)]
    if failures:
        raise ScanFailed(str(failures[0]))
    if any(statuses):
        raise ScanFailed(f"git could not list the pushed objects (exit {statuses})")
    return _merged(parts)


def _read_into(
    reader: subprocess.Popen[bytes],
    prefixes: frozenset[str],
    result: ScanResult,
    failures: list[BaseException],
) -> None:
    """One reader's share, read to its end (a failure is kept for the caller)."""
    assert reader.stdout is not None
    try:
        _read_objects(reader.stdout, prefixes, result)
    except Exception as failure:  # handed to the thread that waits for this one
        failures.append(failure)
    finally:
        reader.stdout.close()


def _merged(parts: list[ScanResult]) -> ScanResult:
    merged = ScanResult(too_many=any(p.too_many for p in parts))
    seen: set[str] = set()
    for part in parts:
        merged.objects += part.objects
        merged.bytes_read += part.bytes_read
        merged.skipped += part.skipped
        for candidate in part.candidates:
            if candidate.secret in seen:
                continue
            if len(seen) >= MAX_CANDIDATES:
                merged.too_many = True
                break
            seen.add(candidate.secret)
            merged.candidates.append(candidate)
    return merged


def _read_objects(stream: _Reader, prefixes: frozenset[str], result: ScanResult) -> None:
    seen: set[str] = set()
    while True:
        line = stream.readline()
        if not line:
            return
        header = _HEADER.match(line.rstrip(b"\n"))
        if header is None:
            continue  # "<name> missing": a path with a newline split the listing's line
        kind, oid, size_text, rest = header.groups()
        size = int(size_text)
        result.objects += 1
        where = _where(kind, oid, rest)
        _read_one(stream, size, kind == b"blob", where, prefixes, seen, result)
        stream.read(1)  # the newline after the contents


def _where(kind: bytes, oid: bytes, rest: bytes) -> str:
    # A path is shown to the pusher and audited: one shaped as a secret is masked, since it
    # may be one (trees, where names live, are not scanned).
    name = _SHAPE.sub(lambda m: m.group()[: codec.PREFIX_LENGTH] + b"...", rest)
    name = _NARROWED.sub(lambda m: m.group()[: codec.PREFIX_LENGTH] + b"...", name)
    printable = "".join(
        ch if ch.isprintable() else "?" for ch in name.decode("utf-8", "replace")
    )[:400]
    if kind == b"blob":
        return printable or oid.decode()
    if kind == b"tag":
        return f"tag {printable or oid.decode()[:12]}"
    return f"{kind.decode()} {oid.decode()[:12]}"


def _read_one(
    stream: _Reader,
    size: int,
    is_blob: bool,
    where: str,
    prefixes: frozenset[str],
    seen: set[str],
    result: ScanResult,
) -> None:
    """Scan one object's `size` bytes in chunks; a chunk keeps the last bytes of the one
    before (as many as the longest secret, less one), so that a secret across two chunks is
    found once."""
    left = size
    tail = b""
    first = True
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise ScanFailed("git ended the pushed objects early")
        left -= len(chunk)
        if first:
            first = False
            if is_blob and size > BINARY_SKIP_BYTES and b"\0" in chunk[:BINARY_PROBE]:
                result.skipped.append(where)
                _discard(stream, left)
                return
        result.bytes_read += len(chunk)
        window = tail + chunk
        for text, prefix in _found(window, prefixes):
            if prefix not in prefixes or text in seen:
                continue
            if len(seen) >= MAX_CANDIDATES:
                result.too_many = True
                continue
            seen.add(text)
            result.candidates.append(Candidate(text, prefix, where))
        tail = window[-_OVERLAP:]


def _found(window: bytes, prefixes: frozenset[str]) -> Iterator[tuple[str, str]]:
    """Every checksum-valid secret in `window`, with its prefix."""
    for match in _SHAPE.finditer(window):
        text = match.group().decode("ascii")
        prefix = codec.prefix_of(text)
        if prefix is not None:
            yield text, prefix
    if narrowing.PREFIX in prefixes:
        for match in _NARROWED.finditer(window):
            text = match.group().decode("ascii")
            if narrowing.is_well_formed(text):
                yield text, narrowing.PREFIX


def _discard(stream: _Reader, left: int) -> None:
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise ScanFailed("git ended the pushed objects early")
        left -= len(chunk)


__all__ = [
    "BINARY_SKIP_BYTES",
    "CHUNK",
    "MAX_CANDIDATES",
    "Candidate",
    "ScanFailed",
    "ScanResult",
    "quarantine_of",
    "scan_push",
]
