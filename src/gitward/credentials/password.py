"""Account passwords: argon2id hashes, verified in a time that does not reveal whether the
user exists."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gitward.credentials import codec
from gitward.credentials.cache import CredentialCache
from gitward.credentials.registry import (
    AuthenticationFailed,
    AuthenticationThrottled,
    Presented,
)
from gitward.credentials.throttle import Blocked, PasswordGuard
from gitward.credentials.totp import TwoStep
from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.storage.models import User
from gitward.storage.store import Store


class PasswordHashing:
    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        # Verified against when the user does not exist, so that a failed login costs the
        # same whether or not the username is known.
        self._dummy = self._hasher.hash("gitward-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if the password matches. With no stored hash, spends the same time and fails."""
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


@dataclass(frozen=True)
class Remembered:
    user_id: int
    password_epoch: int
    expires: float


class VerifiedPasswords:
    """Account passwords verified in the last `lifetime` seconds, so that the requests of
    one `git clone` (two or three, each with the password) pay one argon2id verification
    instead of one each.

    NOTE: an entry is keyed by HMAC-SHA256(server secret, username + password): the password
    itself is never kept, and the key cannot be tested offline without the server secret. An
    entry is trusted only while (a) its lifetime lasts, (b) the credential generation is the
    one it was made under — a password change, a reset, a deactivation or any revocation
    bumps it, on every process and host — and (c) the account row read now is active, is the
    same account and has the same password epoch. A hit still asks the guessing protection
    whether the account is locked from this address; only a miss spends an attempt, so a
    guesser gains nothing from it. Accounts with two-step verification are never remembered
    (their password alone is refused anyway). Lifetime 0 turns it off."""

    def __init__(
        self,
        server_secret: bytes,
        lifetime: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keyed_hash = codec.KeyedHash(server_secret)
        self.lifetime = lifetime
        self.clock = clock
        self._entries: CredentialCache[Remembered] = CredentialCache(10_000)

    def key(self, username: str, password: str) -> str:
        return self._keyed_hash(f"verified-password\0{username}\0{password}")

    def recall(self, key: str, generation: int) -> Remembered | None:
        if self.lifetime <= 0:
            return None
        found = self._entries.get(key)
        if found is None:
            return None
        made_under, remembered = found
        if made_under != generation or remembered.expires <= self.clock():
            self._entries.forget(key)
            return None
        return remembered

    def remember(self, key: str, generation: int, user: User) -> None:
        if self.lifetime <= 0 or user.totp_enabled:
            return
        expires = self.clock() + self.lifetime
        self._entries.put(key, generation, Remembered(user.id, user.password_epoch, expires))

    def forget(self, key: str) -> None:
        self._entries.forget(key)


class AccountPasswords:
    """The account password as a credential (HTTP Basic `username:password`).

    Every attempt first takes a place with the guessing protection (PasswordGuard.reserve),
    so that no more than its limits are ever verified however many arrive at once; a right
    password gives its place back. With two-step verification on, the password alone is
    refused: it needs a current code in `X-Gitward-OTP`, and Git and scripts use app
    passwords or tokens instead. A temporary password (set by a site administrator)
    authenticates, but the policy lets it do nothing but change itself.
    """

    def __init__(
        self,
        hashing: PasswordHashing,
        guard: PasswordGuard,
        two_step: TwoStep,
        min_length: int = 12,
        verified: VerifiedPasswords | None = None,
    ) -> None:
        self.hashing = hashing
        self.guard = guard
        self.two_step = two_step
        #: The shortest password that may be set (services/passwords.py).
        self.min_length = min_length
        #: Recently verified passwords (off when None).
        self.verified = verified

    def _recalled(self, store: Store, presented: Presented, username: str) -> AuthContext | None:
        """The context from a recent verification of this very password, or None."""
        if self.verified is None or not username:
            return None
        key = self.verified.key(username, presented.secret)
        remembered = self.verified.recall(key, store.credentials.generation())
        if remembered is None:
            return None
        user = store.accounts.user_by_username(username)
        if (
            user is None
            or not user.is_active
            or user.id != remembered.user_id
            or user.password_epoch != remembered.password_epoch
            or user.totp_enabled
        ):
            self.verified.forget(key)
            return None
        blocked = self.guard.check(username, presented.client_ip)
        if blocked is not None:
            raise AuthenticationThrottled(blocked.retry_after)
        return _context_of(user)

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        username = (presented.username or "").lower()
        recalled = self._recalled(store, presented, username)
        if recalled is not None:
            return recalled
        with self._attempt(username, presented.client_ip):
            user = store.accounts.user_by_username(username) if username else None
            stored = user.password_hash if user is not None and user.is_active else None
            if not self.hashing.verify(stored, presented.secret) or user is None:
                raise AuthenticationFailed(
                    "Invalid username or password",
                    audit_subject=f"user:{username}",
                    password_attempt=username,
                )
            if user.totp_enabled:
                if not presented.otp:
                    # Not a guess: the password was right. Its place is given back.
                    raise AuthenticationFailed(TWO_STEP_REQUIRED, audit_subject=f"user:{username}")
                if not self.two_step.verify(store, user, presented.otp):
                    raise AuthenticationFailed(
                        "Invalid or already used two-step verification code",
                        audit_subject=f"user:{username}",
                        password_attempt=username,
                    )
        assert user is not None  # the block raised otherwise
        if self.hashing.needs_rehash(user.password_hash or ""):
            user.password_hash = self.hashing.hash(presented.secret)
        if self.verified is not None:
            key = self.verified.key(username, presented.secret)
            self.verified.remember(key, store.credentials.generation(), user)
        return _context_of(user)

    def check_current(self, user: User, password: str, client_ip: str | None) -> bool:
        """Is `password` the user's current one? Counted by the guessing protection like a
        sign-in (a change-password form must not be a way round it); raises
        AuthenticationThrottled when the guard is full."""
        try:
            with self._attempt(user.username, client_ip):
                if not self.hashing.verify(user.password_hash, password):
                    raise AuthenticationFailed(password_attempt=user.username)
        except AuthenticationFailed:
            return False
        return True

    @contextmanager
    def _attempt(self, username: str, client_ip: str | None) -> Iterator[None]:
        """A place with the guard for the block: kept when it raises a failure that counts
        (`password_attempt`), given back otherwise."""
        reservation = self.guard.reserve(username, client_ip)
        if isinstance(reservation, Blocked):
            raise AuthenticationThrottled(reservation.retry_after)
        keep = False
        try:
            yield
        except AuthenticationFailed as failure:
            keep = failure.password_attempt is not None
            raise
        finally:
            if not keep:
                self.guard.release(reservation)


def _context_of(user: User) -> AuthContext:
    return AuthContext(
        UserPrincipal(user.id, user.username, user.is_site_admin),
        CredentialKind.PASSWORD,
        must_change_password=user.must_change_password,
        two_step_verified=user.totp_enabled,
    )


TWO_STEP_REQUIRED = (
    "Two-step verification is on for this account, so its password alone is refused. "
    "Use an app password or an access token for Git and the API; for account operations send "
    "a current code in the X-Gitward-OTP header with your password."
)
