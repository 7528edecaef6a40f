"""Cost of bounding upload-pack request bodies, in process (no HTTP, no git).

The same request bodies go through, interleaved, repeated:
    - "stream": what the server did before the limits: gunzip on the event loop, chunk by
      chunk, handed straight on (`_body_chunks`);
    - "bounded": what it does now: read the whole body first in worker threads (gunzip no
      further than the limit allows, count `have` lines, spool), then hand it on from there
      (`_read_fetch` + `FetchRequest.chunks`).

Bodies: a small incremental fetch (1 want, 64 haves, plain), a long negotiation (1 want,
2,000 haves, gzip, as git sends it), a large clone request (20,000 wants, gzip), and the
report's attack (4,000,000 haves in ~600 KiB of gzip), where "stream" inflates all 200 MiB
and "bounded" stops at the 100,000th `have`.

    PYTHONPATH=src .venv/bin/python bench/fetch_bounds.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from gitward.config import Settings
from gitward.web.git_http.routes import FetchRefused, _body_chunks, _read_fetch

OID = "0123456789abcdef0123456789abcdef01234567"
PIECE = 65536  # what uvicorn hands over per receive, about


def pkt(text: str) -> bytes:
    return b"%04x" % (len(text) + 4) + text.encode()


def gz(data: bytes) -> bytes:
    return zlib.compress(data, 6, wbits=31)


class FakeRequest:
    """Just what the two paths read of a Starlette request."""

    def __init__(self, body: bytes, gzipped: bool) -> None:
        self.body = body
        self.headers = {"content-encoding": "gzip"} if gzipped else {}

    async def stream(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), PIECE):
            yield self.body[start : start + PIECE]
            await asyncio.sleep(0)


async def stream_path(request: Any, runtime: Any) -> int:
    total = 0
    async for chunk in _body_chunks(request):
        total += len(chunk)
    return total


async def bounded_path(request: Any, runtime: Any) -> int:
    try:
        fetch = await _read_fetch(request, runtime)
    except FetchRefused:
        return -1
    total = 0
    async for chunk in fetch.chunks():
        total += len(chunk)
    return total


def bodies() -> dict[str, tuple[bytes, bool]]:
    want = pkt(f"want {OID} multi_ack_detailed side-band-64k ofs-delta\n") + b"0000"
    attack = zlib.compressobj(6, zlib.DEFLATED, 31)
    block = pkt(f"have {OID}\n") * 20_000
    parts = [attack.compress(want)]
    parts += [attack.compress(block) for _ in range(200)]
    parts += [attack.compress(pkt("done\n")), attack.flush()]
    return {
        "incremental fetch: 1 want, 64 haves, plain (3.3 KB)": (
            want + pkt(f"have {OID}\n") * 64 + pkt("done\n"), False,
        ),
        "long negotiation: 1 want, 2,000 haves, gzip (100 KB inflated)": (
            gz(want + pkt(f"have {OID}\n") * 2000 + pkt("done\n")), True,
        ),
        "clone request: 20,000 wants, gzip (1 MB inflated)": (
            gz(pkt(f"want {OID}\n") * 20_000 + b"0000" + pkt("done\n")), True,
        ),
        "the attack: 4,000,000 haves, gzip (~600 KB sent, 200 MB inflated)": (
            b"".join(parts), True,
        ),
    }


async def timed(path: Callable[[Any, Any], Awaitable[int]], body: bytes, gzipped: bool,
                runtime: Any) -> float:
    start = time.perf_counter()
    await path(FakeRequest(body, gzipped), runtime)
    return time.perf_counter() - start


async def run(rounds: int) -> None:
    """On one event loop, with its default executor warmed up, as in the server."""
    runtime = SimpleNamespace(settings=Settings())
    await asyncio.to_thread(lambda: None)
    print("| request body | before: stream (ms) | now: bounded (ms) | difference (ms) |")
    print("|---|---|---|---|")
    for name, (body, gzipped) in bodies().items():
        stream: list[float] = []
        bounded: list[float] = []
        for i in range(3 if "attack" in name else rounds):
            pair = [(stream, stream_path), (bounded, bounded_path)]
            for results, path in pair if i % 2 == 0 else reversed(pair):
                results.append(await timed(path, body, gzipped, runtime))
        a, b = statistics.median(stream) * 1000, statistics.median(bounded) * 1000
        print(f"| {name} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
