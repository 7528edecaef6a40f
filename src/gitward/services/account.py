"""The caller's own account: two-step verification and app passwords."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from gitward.credentials.app_password import AppPasswords
from gitward.credentials.totp import Enrollment, TwoStep
from gitward.domain import networks
from gitward.domain.permissions import Action, parse_scope_list
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, Forbidden, NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import AppPassword, User

MAX_LABEL_LENGTH = 255


# -- two-step verification --------------------------------------------------------------------


def begin_two_step(caller: Caller, two_step: TwoStep) -> Enrollment:
    """Start enrolment: a pending seed and recovery codes, active after `confirm`."""
    user = caller.require_own_account(Action.CREDENTIAL_CREATE)
    if user.totp_enabled:
        raise BadRequest("Two-step verification is already on. Turn it off first to re-enrol.")
    enrollment = two_step.begin(caller.store, user)
    caller.audit("two-step.begin", target=f"user:{user.username}")
    return enrollment


def confirm_two_step(caller: Caller, two_step: TwoStep, code: object) -> User:
    user = caller.require_own_account(Action.CREDENTIAL_CREATE)
    if user.totp_enabled:
        raise BadRequest("Two-step verification is already on.")
    if not user.totp_pending_sealed:
        raise BadRequest("Start with POST /2.0/user/two-step-verification first.")
    if not isinstance(code, str) or not two_step.confirm(caller.store, user, code):
        raise BadRequest("The code is wrong, expired or already used.")
    caller.audit("two-step.enable", target=f"user:{user.username}")
    return user


def disable_two_step(
    caller: Caller, two_step: TwoStep, code: str | None, signed_in_with: str | None = None
) -> None:
    """Turn it off, with a current code (or a recovery code).

    A request that signed in with the password and a current code (X-Gitward-OTP,
    `signed_in_with`) has just proved one: that code is the confirmation, given again in
    `code` or not at all (its step is spent, so it could not be checked a second time). A
    different `code` must be right on its own; a caller that proved no code in this request
    (a web session) gives one in `code`."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    if not user.totp_enabled:
        raise BadRequest("Two-step verification is not on.")
    proved = caller.ctx.two_step_verified and signed_in_with is not None
    same = (
        proved
        and code is not None
        and signed_in_with is not None
        and code.isascii()  # codes are ASCII; anything else is simply not the same code
        and signed_in_with.isascii()
        and secrets.compare_digest(code.strip(), signed_in_with.strip())
    )
    if proved and (code is None or same):
        pass
    elif not code or not two_step.verify(caller.store, user, code):
        raise Forbidden("A current two-step verification code is needed to turn it off.")
    two_step.disable(caller.store, user)
    caller.audit("two-step.disable", target=f"user:{user.username}")


# -- app passwords -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedAppPassword:
    app_password: AppPassword
    secret: str


def create_app_password(
    caller: Caller,
    apps: AppPasswords,
    *,
    label: object,
    scopes: object,
    allowed_ips: object = None,
) -> CreatedAppPassword:
    user = caller.require_own_account(Action.CREDENTIAL_CREATE)
    clean_label = validation.required_text(label, "label", MAX_LABEL_LENGTH)
    try:
        granted = parse_scope_list(scopes)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    allowed = validation.allowed_ips(allowed_ips)
    secret, token_hash = apps.new_secret()
    row = AppPassword(
        user_id=user.id,
        label=clean_label,
        token_hash=token_hash,
        scopes=" ".join(sorted(s.value for s in granted)),
        allowed_ips=networks.stored(allowed),
    )
    caller.store.add(row)
    caller.store.flush()
    caller.audit(
        "app-password.create",
        target=f"user:{user.username}",
        app_password_id=row.id,
        label=row.label,
        scopes=row.scopes.split(),
        allowed_ips=list(allowed or ()),
    )
    return CreatedAppPassword(row, secret)


def list_app_passwords(caller: Caller, window: Window = EVERYTHING) -> Page[AppPassword]:
    """One window of the caller's own app passwords, newest first."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    return caller.store.credentials.app_passwords_of(user.id, window)


def find_app_password(caller: Caller, app_id: str) -> AppPassword:
    """One of the caller's own app passwords (its metadata: the secret is never kept)."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    number = validation.row_id(app_id)
    row = caller.store.credentials.app_password_of(user.id, number) if number is not None else None
    if row is None:
        raise NotFound(f"No app password {app_id[:40]}.")
    return row


def revoke_app_password(caller: Caller, app_id: str) -> None:
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    number = validation.row_id(app_id)
    row = caller.store.credentials.app_password_of(user.id, number) if number is not None else None
    if row is None:
        raise NotFound(f"No app password {app_id[:40]}.")
    caller.store.delete(row)
    caller.store.flush()
    caller.store.credentials.changed()
    caller.audit(
        "app-password.revoke", target=f"user:{user.username}", app_password_id=row.id
    )
