"""Account passwords: changing one's own, a site administrator's reset to a temporary one,
the command line's set-password, and lifting a guessing lock (docs/accounts.md).

A new password (from any of these) is refused when it is shorter than the site's minimum
(`GITWARD_MIN_PASSWORD_LENGTH`, 12 by default), is or contains the username (any case),
or is one of the 10,000 most common passwords (credentials/data/common-passwords.txt).

Changing a password ends the user's web sessions but keeps their tokens, app passwords and
OAuth grants, as Bitbucket keeps personal access tokens: a token is a credential of its own,
revoked on its own. The password epoch (`User.password_epoch`) is bumped and the credential
generation with it; web sessions record the epoch they signed in under and are void once it
differs, and whatever else must end with the password registers in ON_PASSWORD_CHANGE.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from gitward.credentials.password import AccountPasswords, PasswordHashing
from gitward.credentials.throttle import LockState, PasswordGuard
from gitward.domain.permissions import Action
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound
from gitward.storage.models import User
from gitward.storage.store import Store

MAX_PASSWORD_LENGTH = 1024
DEFAULT_MIN_LENGTH = 12
#: A username this short is refused as the whole password, not inside one (too many good
#: passwords contain two given letters).
_SHORTEST_CONTAINED_USERNAME = 3

#: Called with the unit's store and the user whenever a password is set: what must end with
#: the old password (web sessions) registers here.
ON_PASSWORD_CHANGE: list[Callable[[Store, User], None]] = []


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower case, read on first use."""
    text = (
        resources.files("gitward.credentials")
        .joinpath("data/common-passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def password_problem(password: object, username: str, min_length: int) -> str | None:
    """Why `password` may not be set for `username`, or None if it may."""
    if not isinstance(password, str) or not password:
        return "A password is required."
    if len(password) < min_length:
        return f"The password must be at least {min_length} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    folded, name = password.casefold(), username.casefold()
    if folded == name or (len(name) >= _SHORTEST_CONTAINED_USERNAME and name in folded):
        return "The password must not contain the username."
    if folded in common_passwords() or password.lower() in common_passwords():
        return "This password is one of the most common passwords; choose another."
    return None


def check_new_password(password: object, username: str, min_length: int) -> str:
    problem = password_problem(password, username, min_length)
    if problem is not None:
        raise BadRequest(problem)
    assert isinstance(password, str)
    return password


def install_password(
    store: Store, hashing: PasswordHashing, user: User, password: str, *, temporary: bool
) -> None:
    """Set the hash, and end what ends with the old password (see the module)."""
    user.password_hash = hashing.hash(password)
    user.must_change_password = temporary
    user.password_epoch = (user.password_epoch or 0) + 1
    store.flush()
    store.credentials.changed()  # caches keyed by the old password go (credential generation)
    for hook in ON_PASSWORD_CHANGE:
        hook(store, user)


def change_password(
    caller: Caller,
    passwords: AccountPasswords,
    *,
    current: object,
    new: object,
    confirm: object = None,
    confirm_field: str | None = None,
) -> User:
    """The caller changes their own password, giving the current one. Only in person (an
    account password or web session); the one thing a temporary password may do. A wrong
    current password counts against guessing like a failed sign-in. With `confirm_field`
    (the name a surface gives the confirmation), a missing confirmation is refused."""
    user = caller.require_own_account(Action.PASSWORD_CHANGE)
    if confirm is None and confirm_field is not None:
        raise BadRequest(f"Missing required field: {confirm_field}")
    if confirm is not None and confirm != new:
        raise BadRequest("The new password and its confirmation do not match.")
    if not isinstance(current, str) or not current:
        raise BadRequest("The current password is required.")
    password = check_new_password(new, user.username, passwords.min_length)
    if not passwords.check_current(user, current, caller.client_ip):
        raise BadRequest("The current password is not right.")
    if password == current:
        raise BadRequest("The new password must differ from the current one.")
    install_password(caller.store, passwords.hashing, user, password, temporary=False)
    caller.audit("user.password.change", target=f"user:{user.username}")
    return user


@dataclass(frozen=True)
class PasswordReset:
    user: User
    #: The temporary password when the server chose it (shown once), else None.
    generated: str | None = field(repr=False)
    temporary: bool


def reset_password(
    caller: Caller,
    passwords: AccountPasswords,
    username: str,
    *,
    password: object = None,
    confirm: object = None,
) -> PasswordReset:
    """A site administrator sets a user's password. Given none, one is generated (and
    returned once). For anyone but the administrator themself it is temporary: it must be
    changed at the next sign-in and does nothing else until then."""
    caller.require_site_admin()
    user = caller.store.accounts.user_by_username(username) if username else None
    if user is None:
        raise NotFound(f"User {username[:64]} does not exist.")
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(18)
    elif confirm is not None and confirm != password:
        raise BadRequest("The password and its confirmation do not match.")
    chosen = check_new_password(password, user.username, passwords.min_length)
    principal = caller.ctx.user
    temporary = principal is None or principal.user_id != user.id
    install_password(caller.store, passwords.hashing, user, chosen, temporary=temporary)
    caller.audit("user.password.reset", target=f"user:{user.username}", temporary=temporary)
    return PasswordReset(user, generated, temporary)


def set_password_from_cli(
    store: Store, passwords: AccountPasswords, username: str, password: str
) -> User:
    """`gitward admin set-password`: whoever runs it on the server chose the password (a lost
    administrator password), so it is not temporary; the account's guessing lock goes too."""
    user = store.accounts.user_by_username(username)
    if user is None:
        raise NotFound(f"User {username[:64]} does not exist.")
    chosen = check_new_password(password, user.username, passwords.min_length)
    install_password(store, passwords.hashing, user, chosen, temporary=False)
    passwords.guard.unlock(user.username)
    store.audit.record("user.password.set", actor="cli", target=f"user:{user.username}")
    return user


def _admin_target(caller: Caller, username: str) -> User:
    caller.require_site_admin()
    user = caller.store.accounts.user_by_username(username) if username else None
    if user is None:
        raise NotFound(f"User {username[:64]} does not exist.")
    return user


def lock_state(caller: Caller, guard: PasswordGuard, username: str) -> LockState:
    """Failed attempts counted against the account and whether its ceiling is reached."""
    user = _admin_target(caller, username)
    return guard.state(user.username)


def unlock(caller: Caller, guard: PasswordGuard, username: str) -> LockState:
    """A site administrator lifts the guessing lock of an account: every failed attempt at
    its password is forgotten, from every address. Returns the state it was in."""
    user = _admin_target(caller, username)
    before = guard.state(user.username)
    guard.unlock(user.username)
    caller.audit("user.unlock", target=f"user:{user.username}", failures=before.failures)
    return before
