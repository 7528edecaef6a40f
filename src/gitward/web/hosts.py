"""Who is asking, and under which name: trusted proxies, allowed hosts and absolute links.

NOTE: both are attacker-controlled headers. `X-Forwarded-For` picks the address that failed
logins are counted against and that the audit log records, so it is believed only from the
proxies the site names (`GITWARD_TRUSTED_PROXIES`). `Host` would pick the OAuth issuer and
every absolute link in the API (a poisoned link sends a client's credentials elsewhere), so
links come from `GITWARD_BASE_URL` when it is set, and otherwise the Host must be one the
site allows (`GITWARD_ALLOWED_HOSTS`, by default the loopback names and the bound address).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gitward.config import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names of the wildcard bind, not a bind


@dataclass(frozen=True)
class HostPolicy:
    """Which Host headers the server answers to when it has no configured base URL."""

    base_url: str | None
    allowed: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> HostPolicy:
        names = set(settings.allowed_hosts) or set(LOOPBACK_NAMES)
        if not settings.allowed_hosts and settings.host not in _WILDCARDS:
            names.add(settings.host)
        return cls(settings.base_url, frozenset(_normal(name) for name in names))

    def allows(self, host_header: str | None) -> bool:
        if self.base_url is not None:
            return True  # links never follow the Host header then
        if not host_header:
            return False
        host = _normal(host_header)
        if host in self.allowed:
            return True
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        return bool(port) and port.isdigit() and name in self.allowed


def _normal(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.count(":") > 1 and not host.startswith("["):
        return f"[{host}]"  # a bare IPv6 address, as a Host header writes it
    return host


_BASE_URL = "gitward.base_url"


def base_url(request: HTTPConnection) -> str:
    """The absolute URL that links in answers start with (no trailing slash); worked out
    once per request (a listing asks for it a few hundred times)."""
    known: str | None = request.scope.get(_BASE_URL)
    if known is not None:
        return known
    configured: str | None = request.app.state.runtime.settings.base_url
    host = request.headers.get("host") or "localhost"
    url = configured or f"{request.url.scheme}://{host}"
    request.scope[_BASE_URL] = url
    return url


def linking(base: str) -> Request:
    """A request that exists only to carry `base` to the renderers (which ask `base_url` for
    it): how something rendered outside a request (a webhook body at push time) links."""
    return Request({"type": "http", "method": "GET", "headers": [], "path": "/", _BASE_URL: base})


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, proxies: tuple[IPNetwork, ...]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: tuple[IPNetwork, ...]
) -> str | None:
    """The client: the socket peer, unless the peer is a trusted proxy; then the right-most
    `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left were
    written by the client and prove nothing)."""
    if peer is None or not forwarded_for or not _trusted(peer, proxies):
        return peer
    for entry in reversed(forwarded_for.split(",")):
        parsed = _address(entry)
        if parsed is None:
            return peer  # a hop we cannot read: stop at the last address we can vouch for
        if not any(parsed in network for network in proxies):
            return str(parsed)
    return peer


class ClientAddress:
    """Sets the ASGI scope's client (and scheme) to what the trusted proxies say, and ignores
    forwarding headers from everyone else."""

    def __init__(self, app: ASGIApp, proxies: tuple[IPNetwork, ...]) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.proxies:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else None
        if peer is None or not _trusted(peer, self.proxies):
            await self.app(scope, receive, send)
            return
        forwarded_for = proto = None
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                text = value.decode("latin-1")
                forwarded_for = text if forwarded_for is None else f"{forwarded_for},{text}"
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        scope = dict(scope)
        address = client_address(peer, forwarded_for, self.proxies)
        if address != peer:
            scope["client"] = (address, 0)
        if proto in ("http", "https"):
            scope["scheme"] = proto
        await self.app(scope, receive, send)
