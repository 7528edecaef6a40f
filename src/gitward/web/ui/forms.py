"""What the credential pages share: notices after a redirect, form errors that roll the unit
of work back, and the fresh-session rule for creating a credential."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.responses import RedirectResponse, Response

from gitward.services.caller import Caller
from gitward.services.errors import ServiceError
from gitward.web.pipeline import Rollback
from gitward.web.ui.pages import View

T = TypeVar("T")

#: The messages a page shows after a redirect (`?notice=...`): a fixed set, so that a link
#: cannot make a page say anything else.
NOTICES = {
    "revoked": "Revoked. Anything that used it is refused from its next request on.",
    "modified": "Saved. The new permissions hold from the next request on.",
    "ended": "Session ended.",
    "ended-others": "Every other session has ended.",
    "created": "Created.",
    "deactivated": "The account is deactivated: its sessions have ended and none of its "
                   "credentials work.",
    "activated": "The account is active again.",
    "two-step-on": "Two-step verification is on. Keep your recovery codes somewhere safe.",
    "two-step-off": "Two-step verification is off.",
    "saved": "Saved.",
    "unlocked": "Unlocked: the failed attempts at this account's password are forgotten, from "
                "every address.",
    "removed": "Removed.",
    "read": "Every notice is marked read.",
    "merged": "Merged.",
    "declined": "Declined.",
    "redelivered": "Queued again: it is delivered after the webhook's earlier deliveries.",
    "password-changed": "Your password is changed. Every other session has ended; tokens, "
                        "app passwords and OAuth grants keep working.",
    "password-reset": "A temporary password is set: the user must change it at the next "
                      "sign-in. Their sessions have ended.",
}

FRESH_NEEDED = (
    "You signed in more than {minutes} minutes ago: type your password again to create a "
    "credential."
)


def notice(view: View) -> str:
    return NOTICES.get(view.query("notice"), "")


def done(path: str, what: str) -> Response:
    """After a change: back to the page (Post/Redirect/Get), with a notice."""
    return RedirectResponse(f"{path}?notice={what}", 303)


def attempt(work: Callable[[], T], failed: Callable[[ServiceError], Response]) -> T:
    """`work()`, or — when a service refuses it — the page again with the message, and
    nothing of the unit of work kept."""
    try:
        return work()
    except ServiceError as error:
        if error.status in (401, 404):
            raise  # an error page (or sign-in), not the form
        raise Rollback(failed(error)) from None


def is_fresh(view: View, caller: Caller) -> bool:
    return view.runtime.web_sessions.is_fresh(caller.store, caller.ctx)


def require_fresh(view: View, caller: Caller) -> str | None:
    """None when this session may create a credential now, else what to tell the user.

    A session signed in within `session_fresh_seconds` may; an older one must send the
    password again with the form (and the two-step code when that is on), which is
    authenticated through the pipeline like any sign-in (SignInFailed when wrong) and makes
    the session fresh again."""
    if is_fresh(view, caller):
        return None
    user = caller.require_user()
    password = view.raw("password")
    if not password:
        minutes = view.runtime.settings.session_fresh_seconds // 60
        return FRESH_NEEDED.format(minutes=minutes)
    view.sign_in(caller, user.username, password, view.field("otp"))
    view.runtime.web_sessions.refresh(caller.store, caller.ctx)
    return None
