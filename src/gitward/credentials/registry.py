"""Turning a presented credential into an AuthContext, one kind per prefix.

Each credential kind registers an authenticator under its prefix (`gwpat_`, `gwrep_`, …);
the registry routes a secret by its prefix after the codec's checksum check, so that adding
a kind never edits the others, and a malformed secret never reaches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from gitward.credentials import codec
from gitward.domain.identity import (
    API_TOKEN_USERNAME,
    CREDENTIAL_KINDS,
    TOKEN_USERNAME,
    AuthContext,
    CredentialKind,
    Presentation,
)
from gitward.storage.store import Store

__all__ = [
    "TOKEN_USERNAME",
    "AuthenticationFailed",
    "CredentialRegistry",
    "Leak",
    "LeakCheck",
    "LongSecretKind",
    "Presented",
]


class AuthenticationFailed(Exception):
    """The credential was presented but is not valid. Always a 401."""

    def __init__(
        self,
        message: str = "Invalid credentials",
        *,
        audit_subject: str = "",
        password_attempt: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Who the failed attempt was for (a username or a token id), for the audit log only.
        self.audit_subject = audit_subject
        # The username of a wrong password (or password + code): the attempt stays counted
        # by the guessing protection (credentials/throttle.py), which took its place first.
        self.password_attempt = password_attempt
        # Already counted in the metrics by whoever knew what was presented (web/metrics.py).
        self.counted = False


class AuthenticationThrottled(Exception):
    """Too many failed password attempts for this account or address: a 429."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed sign-in attempts")
        self.message = (
            f"Too many failed sign-in attempts. Try again in {retry_after} seconds, or use an "
            "app password or an access token."
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Presented:
    # "cookie": the web session cookie, which only the pages read (web/ui/).
    scheme: Literal["basic", "bearer", "cookie"]
    secret: str = field(repr=False)
    username: str | None = None  # Basic only
    client_ip: str | None = None
    # A two-step verification code sent with an account password (X-Gitward-OTP).
    otp: str | None = None


def presented_as(presented: Presented) -> Presentation:
    """How this secret arrived."""
    if presented.scheme == "bearer":
        return Presentation.BEARER
    if presented.scheme == "cookie":
        return Presentation.COOKIE
    if presented.username == TOKEN_USERNAME:
        return Presentation.BASIC_TOKEN_USERNAME
    if presented.username == API_TOKEN_USERNAME:
        return Presentation.BASIC_API_TOKEN_USERNAME
    return Presentation.BASIC_OWN_USERNAME


def presentation_check(kind: CredentialKind) -> Callable[[Presented], None]:
    """A check refusing a secret of `kind` sent in a way the kind table does not list for it.

    Built once per kind from its row."""
    facts = CREDENTIAL_KINDS[kind]
    accepted = frozenset(facts.presented)
    hint = facts.presentation_hint or "Invalid credentials"

    def check(presented: Presented) -> None:
        if presented_as(presented) not in accepted:
            raise AuthenticationFailed(hint)

    return check


class TokenAuthenticator(Protocol):
    prefix: str

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        """The context for a well-formed secret of this kind, or AuthenticationFailed."""
        ...


@dataclass(frozen=True)
class Leak:
    """A live credential whose secret turned up where it must not be (a pushed file).

    Never holds the secret: only what names the credential and its owner."""

    prefix: str
    #: How messages name one of the kind ("personal access token").
    label: str
    credential_id: int
    name: str
    #: The audit target of whoever owns it: `user:alice`, `repository:acme/app`, ...
    owner: str
    owner_user_id: int | None = None
    #: A narrowed token (docs/narrowed-tokens.md): the public key of its last block, which
    #: revoking it records, and the prefix of the token it was narrowed from.
    revocation_key: str | None = None
    parent_prefix: str | None = None


@runtime_checkable
class LeakCheck(Protocol):
    """A kind whose secrets the server can recognise as live, and revoke, from the secret
    alone (push protection; docs/push-protection.md)."""

    prefix: str

    def leaked(self, store: Store, secret: str) -> Leak | None:
        """The credential of a well-formed `secret` if it is live now (known and not
        expired), else None. No side effect: not a use of the credential."""
        ...

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        """Revoke it (the caller bumps the credential generation and audits)."""
        ...


@runtime_checkable
class LongSecretKind(Protocol):
    """A kind whose secrets are longer than the common format (narrowed tokens), with the
    same prefix and checksum but a length of their own."""

    prefix: str

    def well_formed(self, secret: str) -> bool:
        """The shape and the checksum, locally: no database."""
        ...

    def authenticate(self, store: Store, presented: Presented) -> AuthContext: ...


class PasswordAuthenticator(Protocol):
    def authenticate(self, store: Store, presented: Presented) -> AuthContext: ...


class CredentialRegistry:
    def __init__(self, password: PasswordAuthenticator) -> None:
        self._password = password
        self._kinds: dict[str, TokenAuthenticator] = {}
        #: Kinds whose secrets are longer than codec.SECRET_LENGTH, of a length of their own
        #: (narrowed tokens): `well_formed(secret)` says whether one is.
        self._long: dict[str, LongSecretKind] = {}

    def register(self, kind: TokenAuthenticator) -> None:
        if kind.prefix in self._kinds:
            raise ValueError(f"prefix already registered: {kind.prefix}")
        self._kinds[kind.prefix] = kind
        if isinstance(kind, LongSecretKind):
            self._long[kind.prefix] = kind

    def prefix_of(self, secret: str) -> str | None:
        """The prefix of a well-formed secret of any registered shape (checksum checked),
        else None: `codec.prefix_of`, and the long secrets' own check."""
        prefix = codec.prefix_of(secret)
        if prefix is not None:
            return prefix
        long_kind = self._long.get(secret[: codec.PREFIX_LENGTH])
        if long_kind is not None and long_kind.well_formed(secret):
            return long_kind.prefix
        return None

    @property
    def prefixes(self) -> frozenset[str]:
        return frozenset(self._kinds)

    def leak_prefixes(self) -> frozenset[str]:
        """The prefixes whose secrets `leaked` can recognise."""
        return frozenset(p for p, kind in self._kinds.items() if isinstance(kind, LeakCheck))

    def leaked(self, store: Store, secret: str) -> Leak | None:
        """The live credential `secret` is, if any: the checksum first (a string that only
        looks like a secret never reaches the database), then the keyed hash is looked up
        by the kind that owns the prefix."""
        prefix = self.prefix_of(secret)
        kind = self._kinds.get(prefix) if prefix is not None else None
        if not isinstance(kind, LeakCheck):
            return None
        return kind.leaked(store, secret)

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        kind = self._kinds.get(leak.prefix)
        if isinstance(kind, LeakCheck):
            kind.revoke_leaked(store, leak)

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        secret = presented.secret
        if len(secret) == codec.SECRET_LENGTH:
            kind = self._kinds.get(secret[: codec.PREFIX_LENGTH])
            if kind is not None:
                # The kind checks the checksum before its secret may reach the database
                # (`StoredSecretKind.look_up`): one it has cached was well formed.
                ctx = kind.authenticate(store, presented)
                if ctx.bound.networks is None:
                    return ctx  # shared by every request of the credential, as cached
                # An allow-list is judged by the policy against this request's address.
                return ctx.from_address(presented.client_ip)
        elif len(secret) > codec.SECRET_LENGTH:
            long_kind = self._long.get(secret[: codec.PREFIX_LENGTH])
            if long_kind is not None:
                ctx = long_kind.authenticate(store, presented)  # checks the form itself
                if ctx.bound.networks is None:
                    return ctx
                return ctx.from_address(presented.client_ip)
        if codec.prefix_of(secret) is not None:
            raise AuthenticationFailed("This kind of token is not accepted here")
        if secret.startswith("gw") and secret[2:6].endswith("_"):
            # Shaped like one of our secrets but the checksum is wrong: a typo or truncation.
            raise AuthenticationFailed("Invalid token", audit_subject="malformed-token")
        if presented.scheme != "basic" or presented.username in (
            None, TOKEN_USERNAME, API_TOKEN_USERNAME
        ):
            raise AuthenticationFailed("Invalid token")
        return self._password.authenticate(store, presented)
