"""Narrowed tokens (`gwnar_`): a token's holder derives a weaker token, offline.

Pure: no database, no server, no settings. `gitward token narrow` runs this alone; the server
(credentials/narrowed.py) verifies with it. See docs/narrowed-tokens.md.

The mechanism is a chain of Ed25519 signatures, as Biscuit builds its blocks:

- Every narrowable token (`gwpat_`, `gwrep_`, `gwprj_`, `gwwsp_`) has a *narrowing key*: an
  Ed25519 key pair whose private half is derived from the token's secret
  (HMAC-SHA256(secret, "gitward narrowing key v1") as the seed). The server keeps only the
  public half, next to the keyed hash of the secret: a public key, nothing secret.
- A narrowed token holds the parent's kind and public narrowing key (which names the parent:
  the server looks the parent up by it), then blocks. Block i holds a caveat (the
  restrictions it adds), a fresh public key pk_i, and the signature, by the private key of
  block i-1 (the narrowing key for the first), of the header, the previous signature, the
  caveat and pk_i. The token ends with the private key of its last block (the proof).
- Narrowing again signs one more block with the proof and replaces the proof by the new
  block's private key. Nobody can drop or change a block: that needs the private key of the
  block before it, which no token carries once another block follows.
- The server checks the chain from the parent's stored public key, checks that the proof is
  the private key of the last public key, and applies every caveat on top of the parent's
  live bound: restrictions only ever add up (their intersection).

Text form: `gwnar_` + base62 of the bytes + 6 base62 characters of the CRC32 of everything
before them (the same checksum as every Gitward secret, so a scanner recognises it).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gitward.credentials import codec
from gitward.domain.identity import Bound

PREFIX = "gwnar_"
#: The kinds of token that may be narrowed, by their code in a narrowed token's header.
PARENT_CODES: dict[str, int] = {"gwpat_": 1, "gwrep_": 2, "gwprj_": 3, "gwwsp_": 4}
PARENT_PREFIXES: dict[int, str] = {code: prefix for prefix, code in PARENT_CODES.items()}

VERSION = 1
#: At most this many narrowings in one chain.
MAX_BLOCKS = 8
#: At most this many repositories, and networks, in one narrowing.
MAX_ENTRIES = 32
#: The longest narrowed token (characters); the scanner looks for tokens up to this long.
MAX_LENGTH = 4096
#: The shortest: a header and one block.
MIN_LENGTH = 120

_KEY_CONTEXT = b"gitward narrowing key v1"
_SIGNED_CONTEXT = b"gitward narrowed block v1"
_HEADER = struct.Struct(">BB32s")  # version, parent code, parent's public narrowing key
_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_SHAPE = re.compile(r"gwnar_([0-9A-Za-z]+)")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest lifetime a narrowing may ask for (it never outlives its parent anyway).
MAX_DURATION = timedelta(days=3660)


class NarrowingError(ValueError):
    """What is wrong with a token or a restriction, said for the person who typed it."""


# -- restrictions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caveat:
    """The restrictions one narrowing adds. None (False): this narrowing adds none of that
    kind; the chain's earlier ones still hold."""

    #: `workspace/slug` names, lower case: the token reaches only these repositories.
    repositories: tuple[str, ...] | None = None
    #: Only actions that read.
    read_only: bool = False
    #: Unusable from this time on (UTC, whole seconds).
    expires: datetime | None = None
    #: CIDRs, normalised: usable only from inside them.
    allowed_ips: tuple[str, ...] | None = None

    def is_empty(self) -> bool:
        return (
            self.repositories is None and not self.read_only and self.expires is None
            and self.allowed_ips is None
        )

    def encode(self) -> bytes:
        body: dict[str, object] = {}
        if self.repositories is not None:
            body["repos"] = list(self.repositories)
        if self.read_only:
            body["ro"] = True
        if self.expires is not None:
            body["exp"] = int(self.expires.timestamp())
        if self.allowed_ips is not None:
            body["ips"] = list(self.allowed_ips)
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("ascii")

    @classmethod
    def decode(cls, raw: bytes) -> Caveat:
        """The caveat a block holds; NarrowingError for anything but what `encode` writes."""
        try:
            body = json.loads(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise NarrowingError("a restriction of this token is unreadable") from None
        if not isinstance(body, dict) or not body or set(body) - {"repos", "ro", "exp", "ips"}:
            raise NarrowingError("a restriction of this token is unknown")
        caveat = cls(
            repositories=(
                tuple(parse_repository(r) for r in _strings(body["repos"]))
                if "repos" in body else None
            ),
            read_only=_true(body["ro"]) if "ro" in body else False,
            expires=_timestamp(body["exp"]) if "exp" in body else None,
            allowed_ips=parse_networks(_strings(body["ips"])) if "ips" in body else None,
        )
        if caveat.encode() != raw:
            raise NarrowingError("a restriction of this token is not in its canonical form")
        return caveat


def _strings(value: object) -> list[str]:
    if (
        not isinstance(value, list) or not value or len(value) > MAX_ENTRIES
        or not all(isinstance(v, str) for v in value)
    ):
        raise NarrowingError("a restriction of this token is malformed")
    return list(value)


def _true(value: object) -> bool:
    if value is not True:
        raise NarrowingError("a restriction of this token is malformed")
    return True


def _timestamp(value: object) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**40:
        raise NarrowingError("a restriction of this token is malformed")
    return datetime.fromtimestamp(value, UTC)


def parse_repository(text: str) -> str:
    """`workspace/slug`, lower case (slugs are), or NarrowingError."""
    workspace, _, slug = text.strip().lower().partition("/")
    if not _SLUG.fullmatch(workspace) or not _SLUG.fullmatch(slug):
        raise NarrowingError(
            f"--repository takes WORKSPACE/SLUG, e.g. acme/app, not {text[:80]!r}"
        )
    return f"{workspace}/{slug}"


def parse_networks(entries: Iterable[str]) -> tuple[str, ...]:
    """CIDRs normalised (a bare address is a /32 or /128), in order, without repeats."""
    networks: list[str] = []
    for entry in entries:
        try:
            network = str(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise NarrowingError(
                f"--allowed-ip takes a network in CIDR notation, e.g. 203.0.113.0/24, not "
                f"{entry[:60]!r}"
            ) from None
        if network not in networks:
            networks.append(network)
    if len(networks) > MAX_ENTRIES:
        raise NarrowingError(f"at most {MAX_ENTRIES} networks per narrowing")
    return tuple(networks)


def parse_duration(text: str) -> timedelta:
    """`30m`, `1h`, `7d`, `2w`, `90s`, or NarrowingError."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise NarrowingError(
            f"--expires-in takes a number and a unit (s, m, h, d or w), e.g. 30m, 1h or 7d, "
            f"not {text[:40]!r}"
        )
    duration = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if duration > MAX_DURATION:
        raise NarrowingError("--expires-in may be at most 3660 days")
    return duration


def caveat_of(
    repositories: Sequence[str] = (),
    read_only: bool = False,
    expires_in: str | None = None,
    allowed_ips: Sequence[str] = (),
    now: datetime | None = None,
) -> Caveat:
    """The caveat of `gitward token narrow`'s options; NarrowingError names a bad one."""
    names: list[str] = []
    for text in repositories:
        name = parse_repository(text)
        if name not in names:
            names.append(name)
    if len(names) > MAX_ENTRIES:
        raise NarrowingError(f"at most {MAX_ENTRIES} repositories per narrowing")
    expires = None
    if expires_in is not None:
        moment = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = moment + parse_duration(expires_in)
    caveat = Caveat(
        repositories=tuple(names) or None,
        read_only=read_only,
        expires=expires,
        allowed_ips=parse_networks(allowed_ips) if allowed_ips else None,
    )
    if caveat.is_empty():
        raise NarrowingError(
            "nothing to narrow: give at least one of --repository, --read-only, "
            "--expires-in, --allowed-ip"
        )
    return caveat


@dataclass(frozen=True)
class Restrictions:
    """What a whole chain adds up to: every caveat at once (their intersection)."""

    repositories: frozenset[str] | None = None
    read_only: bool = False
    expires: datetime | None = None
    #: Each narrowing's allow-list: a request must come from inside every one of them.
    allow_lists: tuple[tuple[str, ...], ...] = ()


def combined(caveats: Iterable[Caveat]) -> Restrictions:
    repositories: frozenset[str] | None = None
    read_only = False
    expires: datetime | None = None
    allow_lists: list[tuple[str, ...]] = []
    for caveat in caveats:
        if caveat.repositories is not None:
            named = frozenset(caveat.repositories)
            repositories = named if repositories is None else repositories & named
        read_only = read_only or caveat.read_only
        if caveat.expires is not None:
            expires = caveat.expires if expires is None else min(expires, caveat.expires)
        if caveat.allowed_ips is not None:
            allow_lists.append(caveat.allowed_ips)
    return Restrictions(repositories, read_only, expires, tuple(allow_lists))


def bound_of(
    parent: Bound, restrictions: Restrictions, resolve: Callable[[str], int | None]
) -> Bound:
    """The parent's bound with a chain's restrictions on top (what the server answers):
    `resolve` gives the id of a `workspace/slug` that exists now (None: none, and then the
    name reaches nothing). The expiry is not part of a bound: authentication checks it."""
    repositories = None
    if restrictions.repositories is not None:
        found = (resolve(name) for name in sorted(restrictions.repositories))
        repositories = frozenset(found_id for found_id in found if found_id is not None)
    return parent.narrowed_to(
        repositories=repositories,
        read_only=restrictions.read_only,
        allow_lists=tuple(
            tuple(ipaddress.ip_network(text) for text in allow_list)
            for allow_list in restrictions.allow_lists
        ),
    )


# -- keys and the chain ------------------------------------------------------------------------


def _private_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def narrowing_seed(secret: str) -> bytes:
    """The private narrowing key of a token, from its secret (the holder's side)."""
    return hmac.new(secret.encode("ascii"), _KEY_CONTEXT, hashlib.sha256).digest()


def narrowing_key(secret: str) -> str:
    """The public narrowing key of a token, hex: what the server stores beside its hash."""
    return _public_bytes(_private_key(narrowing_seed(secret))).hex()


@dataclass(frozen=True)
class Block:
    caveat: Caveat
    raw_caveat: bytes
    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class Narrowed:
    """A narrowed token as read: what it claims, not yet checked against its parent."""

    parent_prefix: str
    #: The parent's public narrowing key: names the parent, and verifies the first block.
    parent_key: bytes
    blocks: tuple[Block, ...]
    #: The private key of the last block: what narrows it further (a secret).
    proof: bytes = field(repr=False)

    def restrictions(self) -> Restrictions:
        return combined(block.caveat for block in self.blocks)

    @property
    def last_key(self) -> str:
        """The public key of the last block, hex: what names this token (and revokes it
        with every token narrowed from it)."""
        return self.blocks[-1].public_key.hex()

    def chain_keys(self) -> list[str]:
        return [block.public_key.hex() for block in self.blocks]

    def header(self) -> bytes:
        return _HEADER.pack(VERSION, PARENT_CODES[self.parent_prefix], self.parent_key)

    @property
    def parent_key_hex(self) -> str:
        return self.parent_key.hex()

    def verify(self) -> bool:
        """Does the chain hold from the parent's public narrowing key, and does the proof
        belong to its last block? (Whether that key is a live token's is the server's
        question: it looks the parent up by it.)"""
        try:
            signer = Ed25519PublicKey.from_public_bytes(self.parent_key)
        except ValueError:
            return False
        previous = b""
        header = self.header()
        for block in self.blocks:
            try:
                signer.verify(
                    block.signature, _signed(header, previous, block.raw_caveat, block.public_key)
                )
            except InvalidSignature:
                return False
            signer = Ed25519PublicKey.from_public_bytes(block.public_key)
            previous = block.signature
        proven = _public_bytes(_private_key(self.proof))
        return hmac.compare_digest(proven, self.blocks[-1].public_key)


def _signed(header: bytes, previous: bytes, raw_caveat: bytes, public_key: bytes) -> bytes:
    return b"".join(
        (_SIGNED_CONTEXT, header, previous, struct.pack(">H", len(raw_caveat)), raw_caveat,
         public_key)
    )


def _encode(narrowed: Narrowed) -> str:
    parts = [narrowed.header(), bytes([len(narrowed.blocks)])]
    for block in narrowed.blocks:
        parts += [struct.pack(">H", len(block.raw_caveat)), block.raw_caveat, block.public_key,
                  block.signature]
    parts.append(narrowed.proof)
    body = PREFIX + _base62(b"".join(parts))
    text = body + codec.checksum(body)
    if len(text) > MAX_LENGTH:
        raise NarrowingError(
            f"the narrowed token would be longer than {MAX_LENGTH} characters: name fewer "
            "repositories or networks, or narrow the parent itself"
        )
    return text


def _base62(data: bytes) -> str:
    # A leading 1 keeps leading zero bytes (and makes decoding's length check exact).
    number = int.from_bytes(b"\x01" + data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(codec.BASE62[rest])
    return "".join(reversed(digits))


_DIGITS = {ch: index for index, ch in enumerate(codec.BASE62)}


def _unbase62(text: str) -> bytes:
    number = 0
    for ch in text:
        number = number * 62 + _DIGITS[ch]
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    if not raw or raw[0] != 1:
        raise NarrowingError("this is not a narrowed token")
    return raw[1:]


def is_well_formed(text: str) -> bool:
    """The prefix, the alphabet, the length and the checksum: cheap, local, no key."""
    if not (MIN_LENGTH <= len(text) <= MAX_LENGTH) or _SHAPE.fullmatch(text) is None:
        return False
    body, check = text[: -codec.CHECKSUM_LENGTH], text[-codec.CHECKSUM_LENGTH:]
    return hmac.compare_digest(codec.checksum(body), check)


def parse(text: str) -> Narrowed:
    """The narrowed token `text` claims to be; NarrowingError when it is not one. The
    signatures are not checked here (`Narrowed.verify`, with the parent's key)."""
    if not is_well_formed(text):
        raise NarrowingError("this is not a narrowed token (a typo, or a truncated copy?)")
    raw = _unbase62(text[len(PREFIX) : -codec.CHECKSUM_LENGTH])
    try:
        version, code, parent_key = _HEADER.unpack_from(raw, 0)
        offset = _HEADER.size
        count = raw[offset]
        offset += 1
        if version != VERSION or code not in PARENT_PREFIXES or not 1 <= count <= MAX_BLOCKS:
            raise NarrowingError("this narrowed token is of an unknown version or kind")
        blocks = []
        for _ in range(count):
            (length,) = struct.unpack_from(">H", raw, offset)
            offset += 2
            raw_caveat = raw[offset : offset + length]
            offset += length
            public_key = raw[offset : offset + _KEY_BYTES]
            offset += _KEY_BYTES
            signature = raw[offset : offset + _SIGNATURE_BYTES]
            offset += _SIGNATURE_BYTES
            if len(raw_caveat) != length or len(signature) != _SIGNATURE_BYTES:
                raise NarrowingError("this narrowed token is truncated")
            blocks.append(Block(Caveat.decode(raw_caveat), raw_caveat, public_key, signature))
        proof = raw[offset:]
        if len(proof) != _KEY_BYTES:
            raise NarrowingError("this narrowed token is truncated")
    except (struct.error, IndexError):
        raise NarrowingError("this narrowed token is truncated") from None
    return Narrowed(PARENT_PREFIXES[code], parent_key, tuple(blocks), proof)


def narrow(token: str, caveat: Caveat) -> str:
    """`token` (a narrowable token, or a narrowed one) narrowed by `caveat`: offline, from
    the token alone."""
    token = token.strip()
    if token.startswith(PREFIX):
        narrowed = parse(token)
        if len(narrowed.blocks) >= MAX_BLOCKS:
            raise NarrowingError(f"a token can be narrowed at most {MAX_BLOCKS} times")
        return _extend(narrowed, narrowed.proof, caveat)
    prefix = codec.prefix_of(token)
    if prefix is None:
        raise NarrowingError(
            "this is not a Gitward token (a typo, or a truncated copy?)"
            if token.startswith("gw") else "this is not a Gitward token"
        )
    if prefix not in PARENT_CODES:
        raise NarrowingError(
            "only personal access tokens (gwpat_) and repository, project and workspace "
            "access tokens (gwrep_, gwprj_, gwwsp_) can be narrowed"
        )
    seed = narrowing_seed(token)
    root = Narrowed(prefix, _public_bytes(_private_key(seed)), (), b"")
    return _extend(root, seed, caveat)


def _extend(narrowed: Narrowed, signing_seed: bytes, caveat: Caveat) -> str:
    raw_caveat = caveat.encode()
    next_key = Ed25519PrivateKey.generate()
    public_key = _public_bytes(next_key)
    previous = narrowed.blocks[-1].signature if narrowed.blocks else b""
    signature = _private_key(signing_seed).sign(
        _signed(narrowed.header(), previous, raw_caveat, public_key)
    )
    block = Block(caveat, raw_caveat, public_key, signature)
    proof = next_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return _encode(Narrowed(narrowed.parent_prefix, narrowed.parent_key,
                            (*narrowed.blocks, block), proof))
