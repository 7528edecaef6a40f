"""The secret format shared by every credential kind: `gw<kind>_`, 32 base62 characters, and
a 6-character CRC32 checksum (see the README).

`gw<kind>_` + 32 base62 random characters + 6 base62 characters of the CRC32 of everything
before them. The checksum lets a scanner recognise our secrets and lets the server refuse a
mistyped or truncated one without a database look-up. Secrets are stored only as
HMAC-SHA256(server secret, secret), which is what the database indexes and looks up.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
PREFIX_LENGTH = len("gwpat_")
#: The length of every secret: prefix, random part, checksum.
SECRET_LENGTH = PREFIX_LENGTH + RANDOM_LENGTH + CHECKSUM_LENGTH
_SHAPE = re.compile(
    rf"(gw[a-z]{{3}}_)([0-9A-Za-z]{{{RANDOM_LENGTH}}})([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})"
)


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode("ascii")), CHECKSUM_LENGTH)


def generate(prefix: str) -> str:
    """A new secret with the given prefix (for example `gwpat_`)."""
    if not re.fullmatch(r"gw[a-z]{3}_", prefix):
        raise ValueError(f"not a credential prefix: {prefix!r}")
    body = prefix + "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return body + checksum(body)


def prefix_of(secret: str) -> str | None:
    """The prefix of a well-formed secret whose checksum matches, else None.

    Cheap and local: a typo, a truncated paste or a random string never reaches the database.
    """
    match = _SHAPE.fullmatch(secret)  # not `$`, which lets a trailing newline through
    if match is None:
        return None
    prefix, random_part, check = match.groups()
    if not hmac.compare_digest(checksum(prefix + random_part), check):
        return None
    return prefix


def looks_like_secret(text: str) -> bool:
    return prefix_of(text) is not None


def keyed_hash(key: bytes, secret: str) -> str:
    """HMAC-SHA256 of the secret under the server key, hex: what the database stores (a kind
    hashing many secrets under one key keeps a `KeyedHash`)."""
    return KeyedHash(key)(secret)


class KeyedHash:
    """`keyed_hash` under one key, for the hot path: HMAC-SHA256 as RFC 2104 defines it, with
    the two padded-key states hashed once and copied per secret (as the standard library's
    own HMAC does without OpenSSL). OpenSSL's one-shot HMAC sets a whole context up per call:
    three times what the copies cost, and most of a token's own share of a request
    (bench/README.md). The key itself is not kept."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, secret: str) -> str:
        inner = self._inner.copy()
        inner.update(secret.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_SHA256_BLOCK = 64


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
