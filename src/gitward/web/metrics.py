"""Prometheus metrics, served at `/metrics` (docs/deployment.md lists them).

What is counted: requests by surface and status with their latency, Git operations by
service and status, authentications by credential kind and result. Labels are fixed words
and status codes, never a path, a username or anything a client sent, so no secret and no
name can end up in them, and the number of series stays small.

With several worker processes every worker writes its numbers to memory-mapped files in one
directory (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, set by
`gitward serve` before the workers start) and a scrape, whichever worker answers it, adds
them up. Who may read them: `Settings.metrics_from` (GITWARD_METRICS), the loopback addresses
by default, judged on the client address after GITWARD_TRUSTED_PROXIES; anyone else gets a
plain-text 403 that names the setting.

The hot path adds to a few plain counters per request; they reach prometheus-client once a
second (RequestCounts); bench/README.md has the instruction count.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
import threading
from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Receive, Scope, Send

from gitward.credentials.registry import Presented
from gitward.domain.identity import CredentialKind
from gitward.web.hosts import IPNetwork

PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The ASGI scope key under which the dispatcher names a request's surface (web/app.py).
SURFACE_KEY = "gitward.surface"
#: The surfaces requests are counted under (web/app.py routes each request to one).
SURFACES = ("root", "cloud", "server", "oauth", "git", "web")

REQUESTS = Counter(
    "gitward_http_requests",
    "HTTP requests answered, by surface and status code.",
    ["surface", "status"],
)
LATENCY = Histogram(
    "gitward_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer (Git transfers included).",
    ["surface"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
GIT_OPERATIONS = Counter(
    "gitward_git_operations",
    "Git transfers (upload-pack: clone and fetch; receive-pack: push) by HTTP status code.",
    ["service", "status"],
)
AUTHENTICATIONS = Counter(
    "gitward_authentications",
    "Credentials presented, by kind and result (success, failure, throttled). A failed "
    "secret's kind is unknown, so failures count as password, token, session or malformed.",
    ["kind", "result"],
)

_GIT_SERVICES = {"/git-upload-pack": "upload-pack", "/git-receive-pack": "receive-pack"}


#: How often each process hands what it counted to prometheus-client (and so to a scrape).
FLUSH_SECONDS = 1.0
_BOUNDS = tuple(LATENCY._upper_bounds[:-1])  # without +Inf, which catches everything above


class RequestCounts:
    """The per-request side of the metrics.

    A request only adds to plain dictionaries and lists (no lock: requests are counted on
    the event loop's thread, and the flush runs there too); every `FLUSH_SECONDS` the sums
    are added to prometheus-client's metrics in one go. Calling prometheus-client on every
    request (its label look-up, its locks, the memory-mapped file of multiprocess mode) was
    ~3 % of a cached request (bench/README.md). So a scrape may miss the last second of a
    worker other than the one answering it, and a worker that dies loses its last second.
    """

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int], int] = {}
        self._buckets = {surface: [0] * (len(_BOUNDS) + 1) for surface in SURFACES}
        self._sums = dict.fromkeys(SURFACES, 0.0)
        self._git: dict[tuple[str, int], int] = {}
        self._flushing = False

    def request(self, surface: str, status: int, seconds: float) -> None:
        key = (surface, status)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        self._buckets[surface][bisect_left(_BOUNDS, seconds)] += 1
        self._sums[surface] += seconds
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_and_repeat)

    def git(self, path: str, method: str, status: int) -> None:
        """A Git transfer, when `path` is one (its POST; the ref advertisement is not)."""
        if method != "POST":
            return
        service = _GIT_SERVICES.get(path[path.rfind("/"):])
        if service is not None:
            key = (service, status)
            self._git[key] = self._git.get(key, 0) + 1

    def _flush_and_repeat(self) -> None:
        try:
            self.flush()
        finally:
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_and_repeat)

    def flush(self) -> None:
        """Hand everything counted since the last flush to prometheus-client."""
        requests, self._requests = self._requests, {}
        for (surface, status), count in requests.items():
            REQUESTS.labels(surface, str(status)).inc(count)
        git, self._git = self._git, {}
        for (service, status), count in git.items():
            GIT_OPERATIONS.labels(service, str(status)).inc(count)
        for surface, buckets in self._buckets.items():
            if not any(buckets):
                continue
            self._buckets[surface] = [0] * len(buckets)
            total, self._sums[surface] = self._sums[surface], 0.0
            child = LATENCY.labels(surface)
            # What Histogram.observe does for one sample, for many at once (its bucket
            # values are per bucket, not cumulative; tests/integration/test_metrics.py
            # checks the exposition against prometheus-client's own observe).
            child._sum.inc(total)
            for index, count in enumerate(buckets):
                if count:
                    child._buckets[index].inc(count)
        _AUTHENTICATIONS.flush()
        _flush_successes()


class _Tally:
    """Counts from the pipeline's threads, kept under a lock until the next flush."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, kind: str, result: str) -> None:
        key = (kind, result)
        with self._lock:
            counts = self._counts
            counts[key] = counts.get(key, 0) + 1

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
        for (kind, result), count in counts.items():
            AUTHENTICATIONS.labels(kind, result).inc(count)


_AUTHENTICATIONS = _Tally()
#: Successful authentications by kind: one counter per kind, advanced by the pipeline's
#: threads with `next()` (web/pipeline.py, inline: one C call, atomic under the GIL, with no
#: lock to take — on the hot path a lock and a dict update cost twice as much); the flush
#: hands on what each advanced since the last one.
SUCCESSES: dict[str, itertools.count[int]] = {
    kind.value: itertools.count() for kind in CredentialKind
}
_FLUSHED: dict[str, int] = dict.fromkeys(SUCCESSES, 0)


def _advanced(counter: itertools.count[int]) -> int:
    """How many times `counter` was advanced: its next value, which its repr shows
    (`count(12)`), read without advancing it."""
    return int(repr(counter)[6:-1])


def _flush_successes() -> None:
    for kind, counter in SUCCESSES.items():
        total = _advanced(counter)
        count, _FLUSHED[kind] = total - _FLUSHED[kind], total
        if count:
            AUTHENTICATIONS.labels(kind, "success").inc(count)


def refused(header: str | None, cookie: str | None, *, throttled: bool = False) -> None:
    """A credential that did not verify (or a password attempt refused for guessing)."""
    _AUTHENTICATIONS.add(_attempted_kind(header, cookie), "throttled" if throttled else "failure")


def refused_form(presented: Presented, *, throttled: bool = False) -> None:
    """A credential typed into a form (the sign-in page, OAuth's password grant)."""
    secret = presented.secret
    kind = "token" if secret.startswith("gw") and secret[2:6].endswith("_") else "password"
    _AUTHENTICATIONS.add(kind, "throttled" if throttled else "failure")


def _attempted_kind(header: str | None, cookie: str | None) -> str:
    if header is None:
        return "session" if cookie else "malformed"
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return "token"
    if scheme != "basic":
        return "malformed"
    import base64
    import binascii

    try:
        decoded = base64.b64decode(rest.strip(), validate=True).decode()
        _username, sep, secret = decoded.partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "malformed"
    if not sep:
        return "malformed"
    return "token" if secret.startswith("gw") and secret[2:6].endswith("_") else "password"


def allowed(client: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    if client is None or not networks:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in networks)


def exposition() -> bytes:
    """The text format of every metric: of all workers' files when there are several."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


async def _plain(send: Send, status: int, text: str, *extra: tuple[bytes, bytes]) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), *extra,
    ]})
    await send({"type": "http.response.body", "body": body})


async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    await _plain(send, 403, "Metrics are served only to the addresses in GITWARD_METRICS.\n")


async def serve(scope: Scope, receive: Receive, send: Send, counts: RequestCounts) -> None:
    """The answer of an allowed GET /metrics (the caller checked the address), with what
    this process counted up to now."""
    import anyio.to_thread

    counts.flush()
    if scope["method"] not in ("GET", "HEAD"):
        await _plain(send, 405, "Only GET and HEAD are allowed here.\n", (b"allow", b"GET, HEAD"))
        return
    body = await anyio.to_thread.run_sync(exposition)
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", CONTENT_TYPE.encode()), (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
