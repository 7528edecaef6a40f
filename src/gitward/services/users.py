"""Accounts: creation by a site admin or the CLI, and the first-start administrator."""

from __future__ import annotations

import secrets

from gitward.credentials.password import PasswordHashing
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, Conflict, NotFound, Unauthenticated
from gitward.storage.common import Page, Window, storable
from gitward.storage.models import User
from gitward.storage.store import Store

MIN_PASSWORD_LENGTH = 8


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def create_user(
    store: Store,
    passwords: PasswordHashing,
    *,
    username: str,
    email: str,
    password: str,
    display_name: str | None = None,
    is_site_admin: bool = False,
) -> User:
    """Create an account. The caller has already been authorized (or is the CLI)."""
    name = validation.username(username)
    address = validation.email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > 1024:
        raise BadRequest("The password must be at most 1024 characters long.")
    if store.accounts.user_by_username(name) is not None:
        raise Conflict(f"A user with the name {name!r} already exists.")
    user = User(
        username=name,
        email=address,
        display_name=validation.name(display_name or name, "display name"),
        password_hash=passwords.hash(password),
        is_site_admin=is_site_admin,
    )
    store.add(user)
    store.flush()
    return user


def create_user_as(
    caller: Caller,
    passwords: PasswordHashing,
    *,
    username: str,
    email: str,
    password: str,
    display_name: str | None = None,
) -> User:
    """A site administrator creates an account (Bitbucket Server's admin API)."""
    caller.require_site_admin()
    user = create_user(
        caller.store,
        passwords,
        username=username,
        email=email,
        password=password,
        display_name=display_name,
    )
    caller.audit("user.create", target=f"user:{user.username}")
    return user


def bootstrap_admin(store: Store, passwords: PasswordHashing) -> str | None:
    """With no users at all, create site admin `admin`; return its password (once, on one
    host: several starting together on one empty database wait for each other here)."""
    store.accounts.lock_for_setup()
    if store.accounts.user_count() > 0:
        return None
    password = generate_password()
    create_user(
        store,
        passwords,
        username="admin",
        email="admin@localhost.localdomain",
        password=password,
        display_name="Administrator",
        is_site_admin=True,
    )
    store.audit.record("user.bootstrap-admin", actor="system", target="user:admin")
    return password


def list_users_as(caller: Caller, window: Window, *, name: str = "") -> Page[User]:
    """A site administrator's listing of every account (by username)."""
    caller.require_site_admin()
    return caller.store.accounts.users(window, text=name if name and storable(name) else None)


def find_user_as(caller: Caller, username: str) -> User:
    """One account, for a site administrator."""
    return _managed_user(caller, username)


def _managed_user(caller: Caller, username: str) -> User:
    caller.require_site_admin()
    user = caller.store.accounts.user_by_username(username)
    if user is None:
        raise NotFound(f"User {username} does not exist.")
    return user


def update_user_as(
    caller: Caller,
    username: str,
    *,
    display_name: str | None = None,
    email: str | None = None,
    active: bool | None = None,
) -> User:
    """A site administrator changes an account; `active=False` deactivates it (Gitward
    extension): every credential of the user stops working on its next request."""
    user = _managed_user(caller, username)
    if display_name is not None:
        user.display_name = validation.name(display_name, "display name")
    if email is not None:
        user.email = validation.email(email)
    if active is not None and active != user.is_active:
        if not active and caller.ctx.user and caller.ctx.user.user_id == user.id:
            raise BadRequest("You cannot deactivate your own account.")
        user.is_active = active
        if not active:
            # Its web sessions end with it (and stay ended should it be reactivated).
            caller.store.credentials.end_sessions_of(user.id)
            caller.store.credentials.changed()
        caller.audit(
            "user.activate" if active else "user.deactivate", target=f"user:{user.username}"
        )
    caller.store.flush()
    caller.audit("user.update", target=f"user:{user.username}")
    return user


def delete_user_as(caller: Caller, username: str) -> User:
    """A site administrator deletes an account with its grants and credentials."""
    user = _managed_user(caller, username)
    if caller.ctx.user and caller.ctx.user.user_id == user.id:
        raise BadRequest("You cannot delete your own account.")
    caller.store.delete(user)
    caller.store.flush()
    caller.store.credentials.changed()  # its tokens and app passwords went with it (cascade)
    caller.audit("user.delete", target=f"user:{user.username}")
    return user


def public_profile(caller: Caller, ref: str) -> User:
    """An active user's public profile (`GET /2.0/users/{uuid|account_id}`), by `{uuid}`,
    account_id or username. Any authenticated caller may read one, as on Bitbucket Cloud;
    anonymous callers are asked to authenticate, so that accounts cannot be enumerated
    anonymously; deactivated accounts are not found."""
    if caller.ctx.is_anonymous:
        raise Unauthenticated("Authentication required")
    user = caller.store.accounts.user_by_ref(ref)
    if user is None or not user.is_active:
        raise NotFound(f"User {ref[:100]} not found")
    return user
