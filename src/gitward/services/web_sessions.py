"""A user's web sessions: listing them and ending them (the sessions page)."""

from __future__ import annotations

from gitward.credentials.session import Sessions
from gitward.domain.permissions import Action
from gitward.services import passwords, validation
from gitward.services.caller import Caller
from gitward.services.errors import NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import User, WebSession
from gitward.storage.store import Store


def end_all(store: Store, user: User) -> None:
    """A password was set: every web session of the user ends (the caller that changed its
    own password is given a new one by the page)."""
    store.credentials.end_sessions_of(user.id)
    store.credentials.changed()


def install() -> None:
    """Sessions end with the password they signed in with (services/passwords.py)."""
    if end_all not in passwords.ON_PASSWORD_CHANGE:
        passwords.ON_PASSWORD_CHANGE.append(end_all)


def list_sessions(caller: Caller, window: Window = EVERYTHING) -> Page[WebSession]:
    """One window of the caller's own sessions, most recently seen first."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    return caller.store.credentials.sessions_of(user.id, window)


def end_session(caller: Caller, sessions: Sessions, session_id: str) -> int:
    """End one of the caller's sessions (their current one included); its id."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    number = validation.row_id(session_id)
    if number is None or not sessions.end(caller.store, caller.ctx, number):
        raise NotFound(f"No session {session_id[:20]}.")
    caller.audit("session.end", target=f"user:{user.username}", session_id=number)
    return number


def end_other_sessions(caller: Caller) -> int:
    """End every session of the caller but the one it is calling with; how many ended."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    ended = caller.store.credentials.end_sessions_of(user.id, keep=caller.ctx.credential_id)
    caller.store.credentials.changed()
    caller.audit("session.end-others", target=f"user:{user.username}", ended=ended)
    return ended
