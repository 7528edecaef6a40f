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

The hot path pays a dictionary look-up and three increments per request (label children are
resolved once); bench/README.md has the count.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Receive, Scope, Send

from gitward.credentials.registry import Presented
from gitward.domain.identity import CredentialKind
from gitward.web.hosts import IPNetwork

PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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


class RequestCounts:
    """The per-request side of the metrics, with every label child resolved once."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int], Counter] = {}
        self._latency = {surface: LATENCY.labels(surface) for surface in SURFACES}
        self._git: dict[tuple[str, int], Counter] = {}

    def request(self, surface: str, status: int, seconds: float) -> None:
        key = (surface, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = REQUESTS.labels(surface, str(status))
        child.inc()
        self._latency[surface].observe(seconds)

    def git(self, path: str, method: str, status: int) -> None:
        """A Git transfer, when `path` is one (its POST; the ref advertisement is not)."""
        if method != "POST":
            return
        service = _GIT_SERVICES.get(path[path.rfind("/"):])
        if service is None:
            return
        key = (service, status)
        child = self._git.get(key)
        if child is None:
            child = self._git[key] = GIT_OPERATIONS.labels(service, str(status))
        child.inc()


@lru_cache(maxsize=64)
def _auth_child(kind: str, result: str) -> Counter:
    return AUTHENTICATIONS.labels(kind, result)


def authenticated(kind: CredentialKind) -> None:
    if kind is not CredentialKind.ANONYMOUS:
        _auth_child(kind.value, "success").inc()


def refused(header: str | None, cookie: str | None, *, throttled: bool = False) -> None:
    """A credential that did not verify (or a password attempt refused for guessing)."""
    _auth_child(_attempted_kind(header, cookie), "throttled" if throttled else "failure").inc()


def refused_form(presented: Presented, *, throttled: bool = False) -> None:
    """A credential typed into a form (the sign-in page, OAuth's password grant)."""
    secret = presented.secret
    kind = "token" if secret.startswith("gw") and secret[2:6].endswith("_") else "password"
    _auth_child(kind, "throttled" if throttled else "failure").inc()


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


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer of an allowed GET /metrics (the caller checked the address)."""
    import anyio.to_thread

    if scope["method"] not in ("GET", "HEAD"):
        await _plain(send, 405, "Only GET and HEAD are allowed here.\n", (b"allow", b"GET, HEAD"))
        return
    body = await anyio.to_thread.run_sync(exposition)
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", CONTENT_TYPE.encode()), (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
