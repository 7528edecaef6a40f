"""Account passwords: argon2id hashes, verified in a time that does not reveal whether the
user exists."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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
    ) -> None:
        self.hashing = hashing
        self.guard = guard
        self.two_step = two_step
        #: The shortest password that may be set (services/passwords.py).
        self.min_length = min_length

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        username = (presented.username or "").lower()
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
        return AuthContext(
            UserPrincipal(user.id, user.username, user.is_site_admin),
            CredentialKind.PASSWORD,
            must_change_password=user.must_change_password,
            two_step_verified=user.totp_enabled,
        )

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


TWO_STEP_REQUIRED = (
    "Two-step verification is on for this account, so its password alone is refused. "
    "Use an app password or an access token for Git and the API; for account operations send "
    "a current code in the X-Gitward-OTP header with your password."
)
