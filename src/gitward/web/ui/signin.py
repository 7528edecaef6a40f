"""Signing in and out: `GET|POST /login`, `POST /logout`.

Sign-in goes through the pipeline like every credential: the form's username and password
(and two-step code) are authenticated by `Pipeline.sign_in` — the account password's own
authenticator, with its guessing protection, audit and two-step rule — and only an account
password starts a session: a token, app password or OAuth token typed as the password is
refused.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from gitward.credentials.password import TWO_STEP_REQUIRED
from gitward.domain.identity import CredentialKind
from gitward.services import web_sessions
from gitward.services.caller import Caller
from gitward.web.ui.pages import Pages, View, safe_next

pages = Pages()

TWO_STEP_PROMPT = (
    "Two-step verification is on for this account: enter the code from your authenticator "
    "app (or a recovery code) with your password."
)


def _form(view: View, caller: Caller, status: int = 200, error: str = "",
          ask_otp: bool = False) -> Response:
    notice = ""
    if view.query("ended"):
        notice = "Your session has ended: sign in again."
    elif view.query("signed_out"):
        notice = "You are signed out."
    return view.render(
        caller, "login.html", status,
        title="Sign in",
        next=safe_next(view.field("next") or view.query("next")),
        username=view.field("username"),
        error=error,
        notice=notice,
        ask_otp=ask_otp,
    )


@pages.get("/login")
def login_form(view: View, caller: Caller) -> Response:
    if caller.ctx.credential is CredentialKind.SESSION:
        return RedirectResponse(safe_next(view.query("next")), 303)
    return _form(view, caller)


def _failed(view: View, caller: Caller, message: str) -> Response:
    if message == TWO_STEP_REQUIRED:
        return _form(view, caller, 401, TWO_STEP_PROMPT, ask_otp=True)
    return _form(view, caller, 401, message)


@pages.post("/login", failed=_failed, session=False)
def login(view: View, caller: Caller) -> Response:
    username, password = view.field("username").lower(), view.raw("password")
    if not username or not password:
        return _form(view, caller, 400, "Enter your username and password.")
    signed = view.sign_in(caller, username, password, view.field("otp"))
    user = signed.require_user()
    secret, row = view.runtime.web_sessions.start(
        caller.store, user.id, view.client_ip, view.request.headers.get("user-agent", "")
    )
    signed.audit("session.start", target=f"user:{user.username}", session_id=row.id)
    view.set_session(secret)
    return RedirectResponse(safe_next(view.field("next")), 303)


@pages.post("/logout")
def logout(view: View, caller: Caller) -> Response:
    if caller.ctx.credential is CredentialKind.SESSION:
        web_sessions.end_session(caller, view.runtime.web_sessions, str(caller.ctx.credential_id))
    view.clear_session()
    return RedirectResponse("/login?signed_out=1", 303)
