"""TOTP windows and replay, and recovery codes, on a real SQLite database (the password guard:
tests/integration/test_password_guard.py)."""

from __future__ import annotations

import pyotp
import pytest

from gitward.credentials.password import PasswordHashing
from gitward.credentials.totp import STEP_SECONDS, TwoStep
from gitward.runtime import Runtime
from gitward.services.users import create_user

T0 = 1_800_000_000  # a fixed moment, on a step boundary


@pytest.fixture
def runtime(sqlite_settings):
    rt = Runtime.open(sqlite_settings)
    yield rt
    rt.close()


@pytest.fixture
def enrolled(runtime):
    """A user with two-step verification on, and the clock at T0."""
    two_step = TwoStep(runtime.secret_key)
    two_step.now = lambda: T0
    with runtime.unit_of_work() as store:
        user = create_user(store, runtime.passwords, username="alice", email="a@x.org",
                           password="long enough password")
        enrollment = two_step.begin(store, user)
        code = pyotp.TOTP(enrollment.secret).at(T0)
        assert two_step.confirm(store, user, code)
        user_id = user.id
    return two_step, enrollment, user_id


def verify(runtime, two_step, user_id, code):
    with runtime.unit_of_work() as store:
        return two_step.verify(store, store.accounts.user_by_id(user_id), code)


def test_confirm_needs_the_pending_seed(runtime):
    two_step = TwoStep(runtime.secret_key)
    two_step.now = lambda: T0
    with runtime.unit_of_work() as store:
        user = create_user(store, runtime.passwords, username="bob", email="b@x.org",
                           password="long enough password")
        enrollment = two_step.begin(store, user)
        assert not user.totp_enabled
        assert not two_step.confirm(store, user, "000000" if pyotp.TOTP(
            enrollment.secret).at(T0) != "000000" else "111111")
        assert two_step.confirm(store, user, pyotp.TOTP(enrollment.secret).at(T0))
        assert user.totp_enabled
        assert len(enrollment.recovery_codes) == 10
        assert enrollment.otpauth_uri.startswith("otpauth://totp/Gitward:bob?")


def test_window_accepts_neighbouring_steps_once(runtime, enrolled):
    two_step, enrollment, user_id = enrolled
    totp = pyotp.TOTP(enrollment.secret)
    # The code of T0 was spent by confirm: a replay in its window fails.
    assert not verify(runtime, two_step, user_id, totp.at(T0))
    two_step.now = lambda: T0 + STEP_SECONDS
    # The next step's code works once; the previous step can no longer be used after it.
    assert verify(runtime, two_step, user_id, totp.at(T0 + STEP_SECONDS))
    assert not verify(runtime, two_step, user_id, totp.at(T0 + STEP_SECONDS))
    # One step of drift ahead is accepted; two steps are not.
    assert verify(runtime, two_step, user_id, totp.at(T0 + 2 * STEP_SECONDS))
    assert not verify(runtime, two_step, user_id, totp.at(T0 + 4 * STEP_SECONDS))
    # Codes from too long ago are refused.
    two_step.now = lambda: T0 + 10 * STEP_SECONDS
    assert not verify(runtime, two_step, user_id, totp.at(T0 + 3 * STEP_SECONDS))
    assert not verify(runtime, two_step, user_id, "12345")
    assert not verify(runtime, two_step, user_id, "abcdef")


def test_recovery_codes_are_single_use(runtime, enrolled):
    two_step, enrollment, user_id = enrolled
    code = enrollment.recovery_codes[0]
    assert verify(runtime, two_step, user_id, code.upper().replace("-", "- "))
    assert not verify(runtime, two_step, user_id, code)
    assert verify(runtime, two_step, user_id, enrollment.recovery_codes[1])
    assert not verify(runtime, two_step, user_id, "aaaaa-aaaaa")


def test_recovery_codes_are_stored_hashed(runtime, enrolled):
    _two_step, enrollment, _user_id = enrolled
    path = runtime.settings.sqlalchemy_url.removeprefix("sqlite:///")
    runtime.engine.dispose()
    data = open(path, "rb").read()
    for suffix in ("-wal",):
        try:
            data += open(path + suffix, "rb").read()
        except FileNotFoundError:
            pass
    for code in enrollment.recovery_codes:
        assert code.encode() not in data
    assert enrollment.secret.encode() not in data


def test_unknown_users_cost_a_real_verification(monkeypatch):
    hashing = PasswordHashing(time_cost=1, memory_kib=1024, parallelism=1)
    calls = []
    real = hashing._hasher

    class Counting:
        def verify(self, stored, password):
            calls.append(stored)
            return real.verify(stored, password)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(hashing, "_hasher", Counting())
    assert not hashing.verify(None, "anything")
    assert calls and calls[0].startswith("$argon2id$")
    assert hashing.verify(hashing.hash("pw-123456"), "pw-123456")
