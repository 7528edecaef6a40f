"""Two-step verification: TOTP (RFC 6238) codes and single-use recovery codes.

A code is accepted once: the last accepted time step is stored with the user and advanced with
a conditional UPDATE, so a replay in the same 30-second window fails even when two requests race
on two processes. Recovery codes are stored as keyed hashes and spent the same way.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import pyotp

from gitward.credentials import codec
from gitward.credentials.sealing import Sealer
from gitward.storage.models import RecoveryCode, User, utcnow
from gitward.storage.store import Store

ISSUER = "Gitward"
STEP_SECONDS = 30
#: Codes of the previous and next step are accepted too (clock drift), once each.
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class Enrollment:
    # Shown once to the person enrolling; out of any repr.
    secret: str = field(repr=False)
    otpauth_uri: str = field(repr=False)
    recovery_codes: list[str] = field(repr=False)


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_recovery_code(code: str) -> str:
    return code.strip().lower().replace(" ", "")


def is_totp_code(code: str) -> bool:
    """Six ASCII digits. `str.isdigit` alone takes other scripts' digits too ('²', '١'),
    which no authenticator shows and `compare_digest` cannot compare."""
    return len(code) == 6 and code.isascii() and code.isdigit()


class TwoStep:
    """TOTP seeds sealed with the server secret; codes checked against the live clock."""

    def __init__(self, server_secret: bytes) -> None:
        self._sealer = Sealer(server_secret, "totp-seed")
        self._keyed_hash = codec.KeyedHash(server_secret)
        self.now = time.time  # replaceable in tests

    def recovery_hash(self, code: str) -> str:
        return self._keyed_hash("recovery:" + normalise_recovery_code(code))

    def begin(self, store: Store, user: User) -> Enrollment:
        """A new pending seed and fresh recovery codes; active only after `confirm`."""
        secret = pyotp.random_base32()
        user.totp_pending_sealed = self._sealer.seal(secret)
        codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        store.accounts.delete_recovery_codes(user.id)
        for code in codes:
            store.add(RecoveryCode(user_id=user.id, code_hash=self.recovery_hash(code)))
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
        return Enrollment(secret, uri, codes)

    def confirm(self, store: Store, user: User, code: str) -> bool:
        """Turn two-step verification on if `code` matches the pending seed."""
        if not user.totp_pending_sealed:
            return False
        secret = self._sealer.unseal(user.totp_pending_sealed)
        step = self._matching_step(secret, code)
        if step is None or not self._advance(store, user, step):
            return False
        user.totp_secret_sealed = user.totp_pending_sealed
        user.totp_pending_sealed = None
        user.totp_enabled = True
        return True

    def verify(self, store: Store, user: User, code: str | None) -> bool:
        """A current TOTP code (once) or an unused recovery code (spent now)."""
        if not code or not user.totp_enabled or not user.totp_secret_sealed:
            return False
        code = code.strip()
        if not code.isascii():
            return False  # neither a TOTP code nor a recovery code (both are ASCII)
        if code.isdigit():
            step = self._matching_step(self._sealer.unseal(user.totp_secret_sealed), code)
            return step is not None and self._advance(store, user, step)
        return store.accounts.spend_recovery_code(user.id, self.recovery_hash(code), utcnow())

    def disable(self, store: Store, user: User) -> None:
        user.totp_enabled = False
        user.totp_secret_sealed = None
        user.totp_pending_sealed = None
        store.accounts.delete_recovery_codes(user.id)

    def _matching_step(self, secret: str, code: str) -> int | None:
        code = code.strip()
        if not is_totp_code(code):
            return None
        totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
        current = int(self.now()) // STEP_SECONDS
        for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
            if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
                return step
        return None

    def _advance(self, store: Store, user: User, step: int) -> bool:
        """Record `step` as used; False if it (or a later one) was used already."""
        if not store.accounts.advance_totp_step(user.id, step):
            return False
        user.totp_last_step = step
        return True
