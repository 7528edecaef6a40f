"""The signed-in user's own settings: personal access tokens, API tokens, app passwords, two-step
verification, sessions and OAuth authorizations. Every change goes through the same
services as the REST API (which decide access through `Caller.require`)."""

from __future__ import annotations

from datetime import timedelta

import segno
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from gitward.credentials.totp import Enrollment
from gitward.domain.permissions import ApiScope, Scope
from gitward.services import (
    account,
    api_tokens,
    credential_usage,
    notices,
    oauth_authorizations,
    passwords,
    personal_tokens,
    revocation,
    validation,
    web_sessions,
)
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, ServiceError
from gitward.storage.common import Window
from gitward.storage.models import utcnow
from gitward.web.pipeline import Rollback
from gitward.web.ui.forms import attempt, done, is_fresh, notice, require_fresh
from gitward.web.ui.pages import Pages, View

pages = Pages()

PAGE = Window(0, 100)
PAT_PATH = "/account/personal-access-tokens"
APP_PATH = "/account/app-passwords"
API_TOKEN_PATH = "/account/api-tokens"
TWO_STEP_PATH = "/account/two-step"
SESSIONS_PATH = "/account/sessions"
OAUTH_PATH = "/account/oauth-authorizations"
REVOKED_PATH = "/account/revoked-secrets"
NOTICES_PATH = "/account/notifications"

PROJECT_PERMISSIONS = ("", "PROJECT_READ", "PROJECT_WRITE", "PROJECT_ADMIN")
REPOSITORY_PERMISSIONS = ("REPO_READ", "REPO_WRITE", "REPO_ADMIN")
EXPIRY_CHOICES = ("", "7", "30", "90", "180", "365")
APP_PASSWORD_SCOPES = tuple(scope.value for scope in Scope)
API_TOKEN_SCOPES = tuple(scope.value for scope in ApiScope)
#: An API token must expire, at most 365 days ahead.
API_TOKEN_EXPIRY_CHOICES = ("7", "30", "90", "180", "365")


def _permissions(view: View) -> list[str]:
    chosen = [view.field("project"), view.field("repository") or "REPO_READ"]
    return [name for name in chosen if name]


def _expiry(view: View) -> int | None:
    raw = view.field("expiry")
    if not raw:
        return None
    days = validation.row_id(raw)
    if days is None or days > 999_999:
        raise BadRequest("Choose an expiry in days, or none.")
    return days


# -- personal access tokens --------------------------------------------------------------------


def _pats(view: View, caller: Caller, status: int = 200, *, error: str = "",
          secret: str = "", secret_name: str = "") -> Response:
    user = caller.require_user()
    _, page = personal_tokens.list_tokens(caller, user.username, PAGE)
    return view.render(
        caller, "personal_tokens.html", status, title="Personal access tokens",
        tokens=page.items, error=error, notice=notice(view), secret=secret,
        usage=credential_usage.pat_reports(caller.store, page.items),
        secret_name=secret_name, fresh=is_fresh(view, caller), two_step=user.totp_enabled,
        project_permissions=PROJECT_PERMISSIONS, repository_permissions=REPOSITORY_PERMISSIONS,
        expiry_choices=EXPIRY_CHOICES, max_expiry=view.runtime.settings.pat_max_expiry_days,
        form=view.form, action_base=PAT_PATH, owner=user.username, admin_view=False,
    )


@pages.get(PAT_PATH)
def pat_list(view: View, caller: Caller) -> Response:
    return _pats(view, caller)


def _pat_failed(view: View, caller: Caller, message: str) -> Response:
    return _pats(view, caller, 401, error=message)


@pages.post(PAT_PATH, failed=_pat_failed)
def pat_create(view: View, caller: Caller) -> Response:
    user = caller.require_user()
    stale = require_fresh(view, caller)
    if stale is not None:
        raise Rollback(_pats(view, caller, 403, error=stale))

    def create() -> personal_tokens.Created:
        return personal_tokens.create_token(
            caller, view.runtime.personal_tokens, view.runtime.settings, user.username,
            name=view.field("name"), permissions=_permissions(view),
            expiry_days=_expiry(view),
        )

    created = attempt(create, lambda e: _pats(view, caller, 400, error=e.message))
    view.form = {}  # the form starts empty again below the new secret
    return _pats(view, caller, secret=created.secret, secret_name=created.token.name)


@pages.post(PAT_PATH + "/{token_id}/permissions")
def pat_modify(view: View, caller: Caller) -> Response:
    user = caller.require_user()
    attempt(
        lambda: personal_tokens.modify_token(
            caller, view.runtime.personal_tokens, user.username, view.params["token_id"],
            permissions=_permissions(view),
        ),
        lambda e: _pats(view, caller, 400, error=e.message),
    )
    return done(PAT_PATH, "modified")


@pages.post(PAT_PATH + "/{token_id}/revoke")
def pat_revoke(view: View, caller: Caller) -> Response:
    user = caller.require_user()
    personal_tokens.revoke_token(
        caller, view.runtime.personal_tokens, user.username, view.params["token_id"]
    )
    return done(PAT_PATH, "revoked")


# -- app passwords -------------------------------------------------------------------------------


def _apps(view: View, caller: Caller, status: int = 200, *, error: str = "",
          secret: str = "", secret_name: str = "") -> Response:
    user = caller.require_user()
    page = account.list_app_passwords(caller, PAGE)
    return view.render(
        caller, "app_passwords.html", status, title="App passwords", rows=page.items,
        usage={r.id: credential_usage.app_password_report(caller.store, r) for r in page.items},
        error=error, notice=notice(view), secret=secret, secret_name=secret_name,
        fresh=is_fresh(view, caller), two_step=user.totp_enabled,
        scopes=APP_PASSWORD_SCOPES, form=view.form,
    )


@pages.get(APP_PATH)
def app_list(view: View, caller: Caller) -> Response:
    return _apps(view, caller)


def _app_failed(view: View, caller: Caller, message: str) -> Response:
    return _apps(view, caller, 401, error=message)


@pages.post(APP_PATH, failed=_app_failed)
def app_create(view: View, caller: Caller) -> Response:
    caller.require_user()
    stale = require_fresh(view, caller)
    if stale is not None:
        raise Rollback(_apps(view, caller, 403, error=stale))
    created = attempt(
        lambda: account.create_app_password(
            caller, view.runtime.app_passwords, label=view.field("label"),
            scopes=view.fields("scope"),
        ),
        lambda e: _apps(view, caller, 400, error=e.message),
    )
    view.form = {}
    return _apps(view, caller, secret=created.secret, secret_name=created.app_password.label)


@pages.post(APP_PATH + "/{app_id}/revoke")
def app_revoke(view: View, caller: Caller) -> Response:
    caller.require_user()
    account.revoke_app_password(caller, view.params["app_id"])
    return done(APP_PATH, "revoked")


# -- API tokens ----------------------------------------------------------------------------------


def _api_tokens(view: View, caller: Caller, status: int = 200, *, error: str = "",
                secret: str = "", secret_name: str = "") -> Response:
    user = caller.require_user()
    page = api_tokens.list_tokens(caller, PAGE)
    return view.render(
        caller, "api_tokens.html", status, title="API tokens", rows=page.items,
        usage={r.id: credential_usage.api_token_report(caller.store, r.id, r.scopes.split())
               for r in page.items},
        error=error, notice=notice(view), secret=secret, secret_name=secret_name,
        fresh=is_fresh(view, caller), two_step=user.totp_enabled,
        scopes=API_TOKEN_SCOPES, expiry_choices=API_TOKEN_EXPIRY_CHOICES, form=view.form,
        email=user.email,
    )


def _api_token_expiry(view: View) -> str:
    """The chosen lifetime as the moment the REST body would give."""
    raw = view.field("expiry")
    if raw not in API_TOKEN_EXPIRY_CHOICES:
        raise BadRequest("Choose when the token expires: in 7, 30, 90, 180 or 365 days.")
    return (utcnow() + timedelta(days=int(raw))).isoformat()


def _allowed_ips(view: View) -> list[str]:
    return view.field("allowed_ips").replace(",", " ").split()


@pages.get(API_TOKEN_PATH)
def api_token_list(view: View, caller: Caller) -> Response:
    return _api_tokens(view, caller)


def _api_token_failed(view: View, caller: Caller, message: str) -> Response:
    return _api_tokens(view, caller, 401, error=message)


@pages.post(API_TOKEN_PATH, failed=_api_token_failed)
def api_token_create(view: View, caller: Caller) -> Response:
    caller.require_user()
    stale = require_fresh(view, caller)
    if stale is not None:
        raise Rollback(_api_tokens(view, caller, 403, error=stale))
    created = attempt(
        lambda: api_tokens.create_token(
            caller, view.runtime.api_tokens, name=view.field("name"),
            scopes=view.fields("scope"), expires_on=_api_token_expiry(view),
            allowed_ips=_allowed_ips(view),
        ),
        lambda e: _api_tokens(view, caller, 400, error=e.message),
    )
    view.form = {}
    return _api_tokens(view, caller, secret=created.secret, secret_name=created.token.name)


@pages.post(API_TOKEN_PATH + "/{token_id}/revoke")
def api_token_revoke(view: View, caller: Caller) -> Response:
    caller.require_user()
    api_tokens.revoke_token(caller, view.params["token_id"])
    return done(API_TOKEN_PATH, "revoked")


# -- two-step verification -----------------------------------------------------------------------


def _two_step(view: View, caller: Caller, status: int = 200, *, error: str = "",
              enrolment: Enrollment | None = None) -> Response:
    user = caller.require_user()
    qr = None
    if enrolment is not None:
        qr = Markup(  # noqa: S704 - segno's own SVG of the otpauth URI, no user markup
            segno.make(enrolment.otpauth_uri, error="m").svg_inline(
                scale=5, border=2, title="QR code of your two-step verification seed",
                svgclass="qr",
            )
        )
    return view.render(
        caller, "two_step.html", status, title="Two-step verification", user=user,
        error=error, notice=notice(view), enrolment=enrolment, qr=qr,
        pending=bool(user.totp_pending_sealed) and not user.totp_enabled,
        fresh=is_fresh(view, caller),
    )


@pages.get(TWO_STEP_PATH)
def two_step_page(view: View, caller: Caller) -> Response:
    return _two_step(view, caller)


def _two_step_failed(view: View, caller: Caller, message: str) -> Response:
    return _two_step(view, caller, 401, error=message)


@pages.post(TWO_STEP_PATH + "/enrol", failed=_two_step_failed)
def two_step_enrol(view: View, caller: Caller) -> Response:
    caller.require_user()
    stale = require_fresh(view, caller)
    if stale is not None:
        raise Rollback(_two_step(view, caller, 403, error=stale))
    enrolment = attempt(
        lambda: account.begin_two_step(caller, view.runtime.two_step),
        lambda e: _two_step(view, caller, 400, error=e.message),
    )
    return _two_step(view, caller, enrolment=enrolment)


@pages.post(TWO_STEP_PATH + "/confirm")
def two_step_confirm(view: View, caller: Caller) -> Response:
    attempt(
        lambda: account.confirm_two_step(caller, view.runtime.two_step, view.field("code")),
        lambda e: _two_step(view, caller, 400, error=e.message),
    )
    return done(TWO_STEP_PATH, "two-step-on")


@pages.post(TWO_STEP_PATH + "/off")
def two_step_off(view: View, caller: Caller) -> Response:
    attempt(
        lambda: account.disable_two_step(caller, view.runtime.two_step, view.field("code")),
        lambda e: _two_step(view, caller, e.status, error=e.message),
    )
    return done(TWO_STEP_PATH, "two-step-off")


# -- password ----------------------------------------------------------------------------------

PASSWORD_PATH = "/account/password"


def _password(view: View, caller: Caller, status: int = 200, error: str = "") -> Response:
    user = caller.require_user()
    return view.render(caller, "password.html", status, title="Password", error=error,
                       notice=notice(view), temporary=caller.ctx.must_change_password,
                       min_length=view.runtime.account_passwords.min_length, user=user)


@pages.get(PASSWORD_PATH)
def password_page(view: View, caller: Caller) -> Response:
    return _password(view, caller)


@pages.post(PASSWORD_PATH)
def password_change(view: View, caller: Caller) -> Response:
    """Change it (current and new); every session ends, and this browser gets a new one,
    since the person has just typed the new password."""
    user = attempt(
        lambda: passwords.change_password(
            caller, view.runtime.account_passwords, current=view.raw("current"),
            new=view.raw("new"), confirm=view.raw("confirm"), confirm_field="confirm",
        ),
        lambda e: _password(view, caller, 400, e.message),
    )
    secret, row = view.runtime.web_sessions.start(
        caller.store, user.id, view.client_ip, view.request.headers.get("user-agent", "")
    )
    caller.audit("session.start", target=f"user:{user.username}", session_id=row.id)
    view.set_session(secret)
    return done(PASSWORD_PATH, "password-changed")


# -- sessions ------------------------------------------------------------------------------------


@pages.get(SESSIONS_PATH)
def session_list(view: View, caller: Caller) -> Response:
    rows = web_sessions.list_sessions(caller, PAGE).items
    return view.render(caller, "sessions.html", title="Sessions", rows=rows,
                       current=caller.ctx.credential_id, notice=notice(view))


@pages.post(SESSIONS_PATH + "/{session_id}/end")
def session_end(view: View, caller: Caller) -> Response:
    ended = web_sessions.end_session(caller, view.runtime.web_sessions, view.params["session_id"])
    if ended == caller.ctx.credential_id:
        view.clear_session()
        return RedirectResponse("/login?ended=1", 303)
    return done(SESSIONS_PATH, "ended")


@pages.post(SESSIONS_PATH + "/end-others")
def session_end_others(view: View, caller: Caller) -> Response:
    web_sessions.end_other_sessions(caller)
    return done(SESSIONS_PATH, "ended-others")


# -- OAuth authorizations ----------------------------------------------------------------------


@pages.get(OAUTH_PATH)
def oauth_list(view: View, caller: Caller) -> Response:
    caller.require_user()
    rows = oauth_authorizations.list_authorizations(caller, PAGE).items
    return view.render(caller, "oauth_authorizations.html", title="OAuth authorizations",
                       rows=rows, notice=notice(view))


@pages.post(OAUTH_PATH + "/{consumer_key}/revoke")
def oauth_revoke(view: View, caller: Caller) -> Response:
    caller.require_user()
    oauth_authorizations.revoke_authorization(caller, view.params["consumer_key"])
    return done(OAUTH_PATH, "revoked")


# -- secrets revoked by whoever found them --------------------------------------------------------

#: How each kind of revoked credential is named on the page.
KIND_NAMES = {
    "personal-access-token": "Personal access token",
    "app-password": "App password",
    "web-session": "Web session",
    "oauth-access-token": "OAuth access token",
    "oauth-refresh-token": "OAuth refresh token (its whole authorization)",
}


@pages.get(REVOKED_PATH)
def revoked_list(view: View, caller: Caller) -> Response:
    rows = revocation.revoked_of_own_account(caller, PAGE).items
    return view.render(caller, "revoked_secrets.html", title="Revoked secrets", rows=rows,
                       kinds=KIND_NAMES)


@pages.get(NOTICES_PATH)
def notice_list(view: View, caller: Caller) -> Response:
    user = caller.require_user()
    rows = notices.of_user(caller.store, user.id, PAGE).items
    return view.render(caller, "notifications.html", title="Notifications", rows=rows,
                       notice=notice(view))


@pages.post(NOTICES_PATH + "/read")
def notice_read(view: View, caller: Caller) -> Response:
    user = caller.require_user()
    notices.mark_read(caller.store, user.id)
    return done(NOTICES_PATH, "read")


__all__ = ["ServiceError", "pages"]
