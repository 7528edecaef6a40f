"""Personal access tokens (`gwpat_`): a user's credential, bounded by its permissions.

A token's permissions are one `REPO_*` level and at most one `PROJECT_*` level. On every
request the policy takes min(token permissions, the owner's live levels): the token row
gives the first, the owner's grants (read at request time) the second.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from gitward.credentials.registry import (
    TOKEN_USERNAME,
    AuthenticationFailed,
    Leak,
    Presented,
    presentation_check,
)
from gitward.credentials.stored import StoredSecretKind
from gitward.domain.identity import AuthContext, Bound, CredentialKind, UserPrincipal
from gitward.domain.networks import networks_of
from gitward.domain.permissions import (
    PAT_PERMISSION_LEVELS,
    Level,
    PatPermission,
    ResourceKind,
)
from gitward.domain.refs import patterns_of
from gitward.storage.models import PersonalAccessToken
from gitward.storage.store import Store

PREFIX = "gwpat_"
FORBIDDEN_PERMISSIONS = ("ADMIN", "SYS_ADMIN", "LICENSED_USER", "PROJECT_CREATE")


_CHECK_PRESENTATION = presentation_check(CredentialKind.PERSONAL_ACCESS_TOKEN)


class InvalidPermissions(ValueError):
    pass


@dataclass(frozen=True)
class PatPermissions:
    repository: Level
    project: Level | None = None

    def names(self) -> list[str]:
        result = []
        if self.project is not None:
            result.append(_name(ResourceKind.PROJECT, self.project))
        result.append(_name(ResourceKind.REPOSITORY, self.repository))
        return result

    def bound(self) -> Bound:
        levels = {ResourceKind.REPOSITORY: self.repository}
        if self.project is not None:
            levels[ResourceKind.PROJECT] = self.project
        return Bound(pat=levels)


def _name(kind: ResourceKind, level: Level) -> str:
    for permission, (k, lvl) in PAT_PERMISSION_LEVELS.items():
        if k is kind and lvl == level:
            return permission.value
    raise ValueError(f"no PAT permission for {kind} {level}")


def parse_permissions(value: object) -> PatPermissions:
    """Validate a Server-style permission list; InvalidPermissions names the problem."""
    if not isinstance(value, list) or not value:
        raise InvalidPermissions(
            "permissions must be a non-empty list, e.g. [\"REPO_READ\"] or "
            "[\"PROJECT_READ\", \"REPO_WRITE\"]"
        )
    levels: dict[ResourceKind, Level] = {}
    for raw in value:
        if not isinstance(raw, str):
            raise InvalidPermissions(f"Unknown permission: {raw!r}")
        if raw in FORBIDDEN_PERMISSIONS:
            raise InvalidPermissions(f"Tokens may not have the following permission: {raw}")
        try:
            kind, level = PAT_PERMISSION_LEVELS[PatPermission(raw)]
        except ValueError:
            raise InvalidPermissions(f"Unknown permission: {raw[:64]}") from None
        if kind in levels:
            raise InvalidPermissions(
                f"A token may hold only one {kind.value} permission, not "
                f"{_name(kind, levels[kind])} and {raw}"
            )
        levels[kind] = level
    if ResourceKind.REPOSITORY not in levels:
        raise InvalidPermissions("A token needs a repository permission (REPO_READ, REPO_WRITE "
                                 "or REPO_ADMIN)")
    repo = levels[ResourceKind.REPOSITORY]
    project = levels.get(ResourceKind.PROJECT)
    if project is not None and repo < project:
        raise InvalidPermissions(
            f"The repository permission must be at least the project permission: "
            f"{_name(ResourceKind.PROJECT, project)} needs at least "
            f"{_name(ResourceKind.REPOSITORY, project)}"
        )
    return PatPermissions(repo, project)


class _PermissionColumns(Protocol):
    repo_permission: str
    project_permission: str | None


def permissions_of(token: _PermissionColumns) -> PatPermissions:
    repo = PAT_PERMISSION_LEVELS[PatPermission(token.repo_permission)][1]
    project = (
        PAT_PERMISSION_LEVELS[PatPermission(token.project_permission)][1]
        if token.project_permission
        else None
    )
    return PatPermissions(repo, project)


@dataclass(frozen=True)
class CachedToken:
    """What the next request with a token needs, as authentication last found it; never
    the secret."""

    id: int
    user_id: int
    permissions: PatPermissions
    expires_on: datetime | None
    #: The owner's username, to match a Basic username against.
    username: str
    #: The answer for the token, built once; None while its owner cannot sign in.
    context: AuthContext | None


class _TokenWithOwner(_PermissionColumns, Protocol):
    """A token row with its owner's standing (`pat_by_hash`, `pat_by_narrowing_key`)."""

    id: int
    user_id: int
    expires_on: datetime | None
    username: str
    is_active: bool
    is_site_admin: bool
    allowed_ips: str | None
    ref_patterns: str | None
    fast_forward_only: bool


def cached_token(row: _TokenWithOwner) -> CachedToken:
    """What authentication keeps of a token row (and what its narrowed tokens start from)."""
    permissions = permissions_of(row)
    context = (
        AuthContext(
            UserPrincipal(row.user_id, row.username, bool(row.is_site_admin)),
            CredentialKind.PERSONAL_ACCESS_TOKEN,
            replace(
                permissions.bound(),
                networks=networks_of(row.allowed_ips),
                ref_patterns=patterns_of(row.ref_patterns),
                fast_forward_only=bool(row.fast_forward_only),
            ),
            credential_id=row.id,
        )
        if row.is_active
        else None
    )
    return CachedToken(row.id, row.user_id, permissions, row.expires_on, row.username, context)


def check_basic_username(presented: Presented, token_id: int, username: str) -> None:
    """Basic with the owner's name, or as `x-token-auth` (the token names its owner: Jenkins
    and other CI tools send every token that way)."""
    if (
        presented.scheme == "basic"
        and presented.username != TOKEN_USERNAME
        and (presented.username or "").lower() != username
    ):
        raise AuthenticationFailed(
            "This personal access token belongs to another user",
            audit_subject=f"token:pat:{token_id}",
        )


class PersonalAccessTokens(StoredSecretKind[CachedToken]):
    """The `gwpat_` kind in the credential registry."""

    prefix = PREFIX

    def new_secret(self) -> tuple[str, str]:
        """A fresh secret and the keyed hash to store for it."""
        return self.issue(PREFIX)

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        _CHECK_PRESENTATION(presented)
        generation = store.credentials.generation()
        token_hash, token = self.look_up(presented.secret, generation)
        if token is None:
            # A miss reads the token and its owner's standing in one statement.
            row = store.credentials.pat_by_hash(token_hash)
            if row is None:
                raise AuthenticationFailed(
                    "Invalid or revoked personal access token",
                    audit_subject="token:pat:unknown",
                )
            token = cached_token(row)
            self.remember(token_hash, generation, token)
        if token.expires_on is not None and self.clock() >= token.expires_on:
            raise AuthenticationFailed("This personal access token has expired",
                                       audit_subject=f"token:pat:{token.id}")
        if token.context is None:
            raise AuthenticationFailed("The owner of this token cannot sign in",
                                       audit_subject=f"token:pat:{token.id}")
        check_basic_username(presented, token.id, token.username)
        self.note_use(
            store, PersonalAccessToken, token.id, presented.client_ip,
            column="last_authenticated",
        )
        return token.context

    # -- leaks (push protection) -----------------------------------------------------------

    def leaked(self, store: Store, secret: str) -> Leak | None:
        row = store.credentials.pat_by_hash(self.hash(secret))
        if row is None or (row.expires_on is not None and self.clock() >= row.expires_on):
            return None
        token = store.credentials.pat_by_id(row.id)
        return Leak(
            PREFIX, "personal access token", row.id, token.name if token else "",
            owner=f"user:{row.username}", owner_user_id=row.user_id,
        )

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        token = store.credentials.pat_by_id(leak.credential_id)
        if token is not None:
            store.delete(token)
            store.flush()
