"""Address allow-lists: the IPv4 and IPv6 networks a credential may be used from."""

from __future__ import annotations

import ipaddress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: At most this many networks on one credential (a list is checked on every request).
MAX_NETWORKS = 100


class InvalidAllowList(ValueError):
    """A list that is not a list of CIDRs; the message names the bad entry."""


def parse_allowed_ips(value: object, field: str = "allowed_ips") -> tuple[str, ...] | None:
    """The networks of a request body's allow-list, normalised (`10.1.2.3/8` is
    `10.0.0.0/8`, a bare address is a /32 or /128); None for no list (or an empty one):
    the credential may be used from anywhere."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidAllowList(
            f'{field} must be a list of IPv4 or IPv6 networks in CIDR notation, e.g. '
            '["203.0.113.0/24", "2001:db8::/32"]'
        )
    if len(value) > MAX_NETWORKS:
        raise InvalidAllowList(f"{field} may hold at most {MAX_NETWORKS} networks")
    networks: list[str] = []
    for entry in value:
        if not isinstance(entry, str):
            raise InvalidAllowList(f"{field}: not a network in CIDR notation: {entry!r:.60}")
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise InvalidAllowList(
                f"{field}: not a network in CIDR notation: {entry[:60]!r}"
            ) from None
        if str(network) not in networks:
            networks.append(str(network))
    return tuple(networks) or None


def stored(networks: tuple[str, ...] | None) -> str | None:
    """The column value for a parsed list (space separated)."""
    return " ".join(networks) if networks else None


def listed(column: str | None) -> list[str]:
    """The list a column holds, for a response body (empty: anywhere)."""
    return column.split() if column else []


def networks_of(column: str | None) -> tuple[IPNetwork, ...] | None:
    """The networks a column holds, for a credential's bound (None: anywhere)."""
    if not column:
        return None
    return tuple(ipaddress.ip_network(text, strict=False) for text in column.split())


def intersection(
    networks: tuple[IPNetwork, ...] | None, other: tuple[IPNetwork, ...]
) -> tuple[IPNetwork, ...]:
    """The addresses inside both lists (None: anywhere), as a list. Two CIDRs are either
    disjoint or one holds the other, so the intersection of two lists is, for each pair that
    overlaps, the smaller of the two: exact, and never larger than either list."""
    if networks is None:
        return tuple(dict.fromkeys(other))
    both: dict[IPNetwork, None] = {}
    for first in networks:
        for second in other:
            if first.version != second.version:
                continue
            if first.subnet_of(second):  # type: ignore[arg-type]
                both[first] = None
            elif second.subnet_of(first):  # type: ignore[arg-type]
                both[second] = None
    return tuple(both)


def allows(networks: tuple[IPNetwork, ...], address: IPAddress | None) -> bool:
    """Is `address` inside one of `networks`? An unknown address is inside none."""
    if address is None:
        return False
    return any(address in network for network in networks)


def parse_address(text: str | None) -> IPAddress | None:
    """An address as the ASGI scope gives it (IPv6 possibly in brackets), or None."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1, as a dual-stack socket says
    return address
