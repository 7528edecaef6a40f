"""Objects that carry a secret keep it out of their repr, so that no log line or traceback
shows it (as `Ingress` and `Presented` do)."""

from __future__ import annotations

from gitward.credentials.totp import Enrollment
from gitward.services.passwords import PasswordReset
from gitward.services.webhooks import HookInput
from gitward.web.oauth.routes import Browser

SECRET = "s3cret-value-never-shown"


def test_enrollment() -> None:
    enrollment = Enrollment(SECRET, f"otpauth://totp/x?secret={SECRET}", [SECRET])
    assert SECRET not in repr(enrollment)


def test_password_reset() -> None:
    reset = PasswordReset(user=None, generated=SECRET, temporary=True)  # type: ignore[arg-type]
    assert SECRET not in repr(reset)


def test_authorize_page_browser() -> None:
    browser = Browser(token=SECRET, secret=SECRET, new=False, cookie=SECRET)
    assert SECRET not in repr(browser)


def test_narrowed_token() -> None:
    from gitward.credentials import codec, narrowing

    token = narrowing.narrow(codec.generate("gwpat_"), narrowing.Caveat(read_only=True))
    read = narrowing.parse(token)
    assert read.proof.hex() not in repr(read) and str(read.proof) not in repr(read)


def test_webhook_input() -> None:
    given = HookInput(url="https://example.com/", secret_sent=True, secret=SECRET)
    assert SECRET not in repr(given)
