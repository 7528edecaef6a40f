"""Requests the server itself makes (webhook deliveries, OIDC discovery and keys): where they
may go.

A URL a user hands the server is a way to make the server speak to its own network: the
metadata service of a cloud host, a database on loopback, an admin page on the private LAN.
So every outbound URL is checked twice, with one rule: when it is saved (a clear 400 for the
person typing it) and just before each request (a name may resolve elsewhere by then). The
rule:

- `http` or `https` only, a host name, no user info (`https://user:pass@host/` is refused:
  credentials belong in a secret, not in a URL others may read), at most 2,000 characters;
- every address the host resolves to must be global: loopback, private (RFC 1918, unique
  local), link-local (169.254.0.0/16, the metadata services; fe80::/10), shared, reserved,
  unspecified and multicast addresses are refused, IPv4-mapped IPv6 addresses judged as their
  IPv4 — unless the address is in `GITWARD_OUTBOUND_ALLOWED_NETWORKS`;
- where `https_only` (OIDC issuers), plain `http` is refused unless every address is in the
  allowed networks (a test issuer on loopback, a CI server on the LAN).

The request is then made to the address that was checked, not to the name again (`pinned`):
a name that resolves to a public address at the check and to 127.0.0.1 a moment later (DNS
rebinding) cannot turn the check around. For https the TLS handshake still names the host
(SNI) and the certificate is verified against it.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH = 2000


class OutboundRefused(ValueError):
    """The URL may not be requested by the server; the message says why, for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address `host` resolves to (both families), as text."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"the host {host!r} could not be resolved") from exc
    return [str(info[4][0]) for info in infos]


_RESOLVING = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="gitward-resolve")


def bounded_resolver(seconds: float, resolver: Resolver = system_resolver) -> Resolver:
    """`resolver`, given at most `seconds`: for checks made while a unit of work is open (a
    hook saved), where a slow name server must not hold the database. Past the limit the
    host counts as not resolved (the look-up finishes in the background)."""

    def resolve(host: str, port: int) -> Sequence[str]:
        future = _RESOLVING.submit(resolver, host, port)
        try:
            return future.result(timeout=seconds)
        except concurrent.futures.TimeoutError:
            raise OutboundRefused(
                f"the host {host!r} could not be resolved within {seconds:g} s"
            ) from None

    return resolve


@dataclass(frozen=True)
class Destination:
    """A checked URL and the address it is to be requested at."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    def pinned(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        """(url, headers, httpx extensions) that reach `address` while speaking to `host`:
        the URL names the address, `Host` names the host, and for https the TLS handshake
        names (and the certificate is verified against) the host."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{literal}:{self.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        default = 443 if self.scheme == "https" else 80
        host_header = self.host if self.port == default else f"{self.host}:{self.port}"
        if ":" in self.host:
            host_header = f"[{self.host}]" if self.port == default else f"[{self.host}]:{self.port}"
        extensions: dict[str, Any] = {}
        if self.scheme == "https":
            extensions["sni_hostname"] = self.host
        return url, {"Host": host_header}, extensions


def _judged(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class OutboundRules:
    """The rule above, with the site's allowed networks."""

    def __init__(
        self, allowed_networks: Iterable[str] = (), resolver: Resolver = system_resolver
    ) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in allowed_networks
        )
        self.resolver = resolver

    def in_allowed(self, address: IPAddress) -> bool:
        judged = _judged(address)
        return any(judged in net for net in self.allowed if net.version == judged.version) or any(
            address in net for net in self.allowed if net.version == address.version
        )

    def address_ok(self, address: IPAddress) -> bool:
        judged = _judged(address)
        if self.in_allowed(address):
            return True
        return judged.is_global and not judged.is_multicast

    def parse(self, url: object) -> SplitResult:
        """The syntactic half of the rule (no DNS): for a clear error when a URL is saved."""
        if not isinstance(url, str) or not url.strip():
            raise OutboundRefused("the URL must be a non-empty string")
        if len(url) > MAX_URL_LENGTH:
            raise OutboundRefused(f"the URL must be at most {MAX_URL_LENGTH} characters")
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
            raise OutboundRefused("the URL must not contain spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise OutboundRefused(f"the URL is not valid: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise OutboundRefused("the URL must start with http:// or https://")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise OutboundRefused("the URL must not contain a user name or password")
        if not parts.hostname:
            raise OutboundRefused("the URL must name a host")
        if port == 0:
            raise OutboundRefused("the URL's port must be between 1 and 65535")
        return parts

    def check(self, url: object, *, https_only: bool = False) -> Destination:
        """The whole rule: parse, resolve, judge every address. The Destination holds the
        first address, to which the request is to be made (`Destination.pinned`)."""
        parts = self.parse(url)
        assert isinstance(url, str) and parts.hostname is not None
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        raw = [str(literal)] if literal is not None else list(self.resolver(host, port))
        addresses: list[IPAddress] = []
        for text in raw:
            try:
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise OutboundRefused(f"the host {host!r} could not be resolved")
        for address in addresses:
            if not self.address_ok(address):
                raise OutboundRefused(
                    f"the host {host!r} resolves to {address}, a loopback, private or "
                    "link-local address, which the server does not call "
                    "(GITWARD_OUTBOUND_ALLOWED_NETWORKS can allow it)"
                )
        if https_only and parts.scheme != "https" and not all(
            self.in_allowed(a) for a in addresses
        ):
            raise OutboundRefused("the URL must use https://")
        return Destination(url, parts.scheme, host, port, addresses[0])
