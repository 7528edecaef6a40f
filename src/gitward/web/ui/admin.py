"""Site administration: accounts, a user's personal access tokens (modify and revoke only:
nobody creates a token for someone else), and the audit log (read only, as everywhere)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from gitward.services import audit, credential_usage, passwords, personal_tokens, users, validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest
from gitward.storage.common import Window
from gitward.web.ui.account import PROJECT_PERMISSIONS, REPOSITORY_PERMISSIONS, _permissions
from gitward.web.ui.forms import attempt, done, notice
from gitward.web.ui.pages import Pages, View

pages = Pages()

USERS = "/admin/users"
AUDIT = "/admin/audit"
#: Events per page of the audit log.
EVENTS_PER_PAGE = 50
AUDIT_FILTERS = ("actor", "action", "target", "from", "to")


def _users(view: View, caller: Caller, status: int = 200, *, error: str = "",
           secret: str = "", secret_name: str = "") -> Response:
    page = users.list_users_as(caller, Window(0, 200), name=view.query("q"))
    return view.render(caller, "admin_users.html", status, title="Users", rows=page.items,
                       more=page.has_more, error=error, notice=notice(view), secret=secret,
                       secret_name=secret_name, q=view.query("q"), form=view.form)


@pages.get(USERS)
def user_list(view: View, caller: Caller) -> Response:
    return _users(view, caller)


@pages.post(USERS)
def user_create(view: View, caller: Caller) -> Response:
    typed = view.raw("password")
    password = typed or users.generate_password()
    user = attempt(
        lambda: users.create_user_as(
            caller, view.runtime.passwords, username=view.field("username"),
            email=view.field("email"), password=password,
            display_name=view.field("display_name") or None,
        ),
        lambda e: _users(view, caller, 400, error=e.message),
    )
    if typed:
        return done(f"{USERS}/{user.username}", "created")
    return _users(view, caller, secret=password, secret_name=f"{user.username}'s password")


def _user(view: View, caller: Caller, status: int = 200, error: str = "",
          secret: str = "") -> Response:
    user = users.find_user_as(caller, view.params["username"])
    lock = passwords.lock_state(caller, view.runtime.password_guard, user.username)
    me = caller.ctx.user
    return view.render(caller, "admin_user.html", status, title=user.username, user=user,
                       error=error, notice=notice(view), secret=secret,
                       secret_name=f"{user.username}'s temporary password", lock=lock,
                       is_me=me is not None and me.user_id == user.id)


@pages.post(USERS + "/{username}/reset-password")
def user_reset_password(view: View, caller: Caller) -> Response:
    """A temporary password, generated and shown once: the user must change it when they
    next sign in, and it does nothing else until then."""
    reset = attempt(
        lambda: passwords.reset_password(caller, view.runtime.account_passwords,
                                         view.params["username"]),
        lambda e: _user(view, caller, 400, e.message),
    )
    return _user(view, caller, secret=reset.generated or "")


@pages.get(USERS + "/{username}")
def user_page(view: View, caller: Caller) -> Response:
    return _user(view, caller)


@pages.post(USERS + "/{username}/unlock")
def user_unlock(view: View, caller: Caller) -> Response:
    """Lift the guessing lock of the account's password, from every address (as
    `gitward admin unlock` and `DELETE /rest/api/1.0/admin/users/captcha?name=` do)."""
    username = view.params["username"]
    attempt(lambda: passwords.unlock(caller, view.runtime.password_guard, username),
            lambda e: _user(view, caller, 400, e.message))
    return done(f"{USERS}/{username}", "unlocked")


def _set_active(view: View, caller: Caller, active: bool) -> Response:
    user = attempt(
        lambda: users.update_user_as(caller, view.params["username"], active=active),
        lambda e: _user(view, caller, 400, e.message),
    )
    return done(f"{USERS}/{user.username}", "activated" if active else "deactivated")


@pages.post(USERS + "/{username}/deactivate")
def user_deactivate(view: View, caller: Caller) -> Response:
    return _set_active(view, caller, False)


@pages.post(USERS + "/{username}/activate")
def user_activate(view: View, caller: Caller) -> Response:
    return _set_active(view, caller, True)


def _tokens(view: View, caller: Caller, status: int = 200, error: str = "") -> Response:
    caller.require_site_admin()
    owner, page = personal_tokens.list_tokens(caller, view.params["username"], Window(0, 100))
    return view.render(
        caller, "personal_tokens.html", status, title=f"{owner.username}'s personal access tokens",
        tokens=page.items, error=error, notice=notice(view), secret="", secret_name="",
        usage=credential_usage.pat_reports(caller.store, page.items),
        fresh=True, two_step=False, project_permissions=PROJECT_PERMISSIONS,
        repository_permissions=REPOSITORY_PERMISSIONS, expiry_choices=(), max_expiry=None,
        form={}, action_base=f"{USERS}/{owner.username}/personal-access-tokens",
        owner=owner.username, admin_view=True,
    )


@pages.get(USERS + "/{username}/personal-access-tokens")
def user_tokens(view: View, caller: Caller) -> Response:
    return _tokens(view, caller)


@pages.post(USERS + "/{username}/personal-access-tokens/{token_id}/permissions")
def user_token_modify(view: View, caller: Caller) -> Response:
    caller.require_site_admin()
    owner, _ = attempt(
        lambda: personal_tokens.modify_token(
            caller, view.runtime.personal_tokens, view.params["username"],
            view.params["token_id"], permissions=_permissions(view),
        ),
        lambda e: _tokens(view, caller, 400, e.message),
    )
    return done(f"{USERS}/{owner.username}/personal-access-tokens", "modified")


@pages.post(USERS + "/{username}/personal-access-tokens/{token_id}/revoke")
def user_token_revoke(view: View, caller: Caller) -> Response:
    caller.require_site_admin()
    username = view.params["username"]
    personal_tokens.revoke_token(caller, view.runtime.personal_tokens, username,
                                 view.params["token_id"])
    return done(f"{USERS}/{username}/personal-access-tokens", "revoked")


@pages.get(AUDIT)
def audit_log(view: View, caller: Caller) -> Response:
    """The site's audit log for its admins, newest first, filtered as the API filters it
    (`GET /rest/audit/1.0/events`): a bad filter is the form's error, not a missing page."""
    shown = {name: view.query(name)[:audit.MAX_FILTER] for name in AUDIT_FILTERS}
    number = max(1, min(validation.row_id(view.query("page")) or 1, 10_000))
    window = Window((number - 1) * EVENTS_PER_PAGE, EVENTS_PER_PAGE)
    try:
        wanted = audit.audit_filter(shown["actor"], shown["action"], shown["target"],
                                    shown["from"], shown["to"])
    except BadRequest as error:
        # The newest events unfiltered, under the reason (the service checks who may).
        latest = audit.site_events(caller, audit.AuditFilter(), Window(0, EVENTS_PER_PAGE),
                                   newest_first=True)
        return view.render(caller, "admin_audit.html", 400, title="Audit log",
                           rows=latest.items, more=False, page=1, shown=shown, query="",
                           error=f"{error.message} Showing the newest events, unfiltered.")
    events = audit.site_events(caller, wanted, window, newest_first=True)
    query = urlencode({name: value for name, value in shown.items() if value})
    return view.render(caller, "admin_audit.html", title="Audit log", rows=events.items,
                       more=events.has_more, page=number, shown=shown, query=query)
