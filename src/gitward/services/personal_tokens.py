"""Use cases of personal access tokens (Bitbucket Server's /rest/access-tokens API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gitward.config import Settings
from gitward.credentials import narrowing
from gitward.credentials.personal import (
    InvalidPermissions,
    PatPermissions,
    PersonalAccessTokens,
    parse_permissions,
)
from gitward.domain import networks, refs
from gitward.domain.identity import CredentialKind
from gitward.domain.permissions import Action, ResourceKind
from gitward.domain.policy import Target
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import PersonalAccessToken, User, utcnow

MAX_NAME_LENGTH = 255
_UNSET: Any = object()


@dataclass(frozen=True)
class Created:
    token: PersonalAccessToken
    owner: User
    secret: str


def _target(user: User, token_id: int | None = None) -> Target:
    return Target(
        ResourceKind.ACCOUNT,
        user_id=user.id,
        credential_kind=CredentialKind.PERSONAL_ACCESS_TOKEN if token_id else None,
        credential_id=token_id,
    )


def _owner(caller: Caller, user_slug: str) -> User:
    user = caller.store.accounts.user_by_username(user_slug)
    if user is None:
        raise caller.not_found(f"User {user_slug} does not exist.")
    return user


def _name(value: object) -> str:
    return validation.required_text(value, "token name", MAX_NAME_LENGTH)


def _permissions(value: object) -> PatPermissions:
    try:
        return parse_permissions(value)
    except InvalidPermissions as error:
        raise BadRequest(str(error)) from None


def _expiry_days(value: object, settings: Settings) -> int | None:
    if value is None:
        if settings.pat_expiry_required:
            limit = settings.pat_max_expiry_days
            hint = f" of at most {limit} days" if limit else ""
            raise BadRequest(f"This server requires tokens to expire: give expiryDays{hint}.")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"expiryDays must be a positive integer, not {value!r:.40}.")
    if value > validation.MAX_EXPIRY_DAYS:
        raise BadRequest(
            f"expiryDays must be at most {validation.MAX_EXPIRY_DAYS} (100 years); leave it "
            "out for a token that does not expire."
        )
    if settings.pat_max_expiry_days is not None and value > settings.pat_max_expiry_days:
        raise BadRequest(
            f"expiryDays must be at most {settings.pat_max_expiry_days} on this server."
        )
    return value


def create_token(
    caller: Caller,
    tokens: PersonalAccessTokens,
    settings: Settings,
    user_slug: str,
    *,
    name: object,
    permissions: object,
    expiry_days: object = None,
    allowed_ips: object = None,
    ref_patterns: object = None,
    fast_forward_only: object = None,
) -> Created:
    owner = _owner(caller, user_slug)
    caller.require(Action.CREDENTIAL_CREATE, _target(owner), f"User {user_slug} does not exist.")
    clean_name = _name(name)
    perms = _permissions(permissions)
    days = _expiry_days(expiry_days, settings)
    allowed = validation.allowed_ips(allowed_ips, "allowedIps")
    patterns = validation.ref_patterns(ref_patterns, "refPatterns")
    forward_only = validation.flag(fast_forward_only, "fastForwardOnly")
    if caller.store.credentials.pat_count(owner.id) >= settings.pat_max_per_user:
        raise BadRequest(
            f"A user may hold at most {settings.pat_max_per_user} personal access tokens: "
            "revoke one first."
        )
    secret, token_hash = tokens.new_secret()
    now = utcnow()
    names = perms.names()
    token = PersonalAccessToken(
        user_id=owner.id,
        name=clean_name,
        token_hash=token_hash,
        repo_permission=next(n for n in names if n.startswith("REPO_")),
        project_permission=next((n for n in names if n.startswith("PROJECT_")), None),
        created_on=now,
        expiry_days=days,
        expires_on=now + timedelta(days=days) if days else None,
        created_by_id=caller.ctx.user.user_id if caller.ctx.user else None,
        allowed_ips=networks.stored(allowed),
        ref_patterns=refs.stored(patterns),
        fast_forward_only=forward_only,
        narrowing_key=narrowing.narrowing_key(secret),
    )
    caller.store.add(token)
    caller.store.flush()
    caller.audit(
        "pat.create",
        target=f"user:{owner.username}",
        token_id=token.id,
        name=clean_name,
        permissions=names,
        expiry_days=days,
        allowed_ips=list(allowed or ()),
        ref_patterns=list(patterns) if patterns is not None else None,
        fast_forward_only=forward_only,
    )
    return Created(token, owner, secret)


def list_tokens(
    caller: Caller, user_slug: str, window: Window = EVERYTHING
) -> tuple[User, Page[PersonalAccessToken]]:
    """The owner and one window of their tokens, newest first."""
    owner = _owner(caller, user_slug)
    caller.require(Action.CREDENTIAL_MANAGE, _target(owner), f"User {user_slug} does not exist.")
    return owner, caller.store.credentials.pats_of(owner.id, window)


def get_token(
    caller: Caller, user_slug: str, token_id: str, action: Action = Action.CREDENTIAL_MANAGE
) -> tuple[User, PersonalAccessToken]:
    owner = _owner(caller, user_slug)
    token = caller.store.credentials.pat_by_id(_token_id(token_id))
    if token is None or token.user_id != owner.id:
        caller.require(
            Action.CREDENTIAL_MANAGE, _target(owner), f"User {user_slug} does not exist."
        )
        raise NotFound(f"No personal access token {token_id} for {owner.username}.")
    caller.require(action, _target(owner, token.id), f"User {user_slug} does not exist.")
    return owner, token


def _token_id(raw: str) -> int:
    number = validation.row_id(raw)
    return -1 if number is None else number


def modify_token(
    caller: Caller,
    tokens: PersonalAccessTokens,
    user_slug: str,
    token_id: str,
    *,
    name: object = _UNSET,
    permissions: object = _UNSET,
    allowed_ips: object = _UNSET,
    ref_patterns: object = _UNSET,
    fast_forward_only: object = _UNSET,
) -> tuple[User, PersonalAccessToken]:
    owner, token = get_token(caller, user_slug, token_id)
    changes: dict[str, object] = {}
    if name is not _UNSET:
        token.name = _name(name)
        changes["name"] = token.name
    if permissions is not _UNSET:
        names = _permissions(permissions).names()
        token.repo_permission = next(n for n in names if n.startswith("REPO_"))
        token.project_permission = next((n for n in names if n.startswith("PROJECT_")), None)
        changes["permissions"] = names
    if allowed_ips is not _UNSET:
        allowed = validation.allowed_ips(allowed_ips, "allowedIps")
        token.allowed_ips = networks.stored(allowed)
        changes["allowed_ips"] = list(allowed or ())
    if ref_patterns is not _UNSET:
        patterns = validation.ref_patterns(ref_patterns, "refPatterns")
        token.ref_patterns = refs.stored(patterns)
        changes["ref_patterns"] = list(patterns) if patterns is not None else None
    if fast_forward_only is not _UNSET:
        token.fast_forward_only = validation.flag(fast_forward_only, "fastForwardOnly")
        changes["fast_forward_only"] = token.fast_forward_only
    caller.store.flush()
    caller.store.credentials.changed()
    caller.audit("pat.modify", target=f"user:{owner.username}", token_id=token.id, **changes)
    return owner, token


def revoke_token(
    caller: Caller, tokens: PersonalAccessTokens, user_slug: str, token_id: str
) -> None:
    owner, token = get_token(caller, user_slug, token_id)
    caller.store.delete(token)
    caller.store.flush()
    caller.store.credentials.changed()
    caller.audit("pat.revoke", target=f"user:{owner.username}", token_id=token.id, name=token.name)


def rotate_token(
    caller: Caller, tokens: PersonalAccessTokens, user_slug: str, token_id: str
) -> Created:
    """A new secret for the same token: same name, permissions and expiry; the old one dies."""
    owner, token = get_token(caller, user_slug, token_id, Action.CREDENTIAL_ROTATE)
    if token.expires_on is not None and token.expires_on <= utcnow():
        raise BadRequest("This token has expired; create a new one instead.")
    secret, token_hash = tokens.new_secret()
    token.token_hash = token_hash
    # A new narrowing key with the new secret: what was narrowed from the old one dies too.
    token.narrowing_key = narrowing.narrowing_key(secret)
    token.rotated_on = utcnow()
    caller.store.flush()
    caller.store.credentials.changed()
    caller.audit("pat.rotate", target=f"user:{owner.username}", token_id=token.id, name=token.name)
    return Created(token, owner, secret)
