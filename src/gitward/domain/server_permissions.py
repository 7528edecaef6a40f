"""Bitbucket Server's permission names, as Gitward's grants and scopes: two tables.

Bitbucket Server names the permissions of users on projects and repositories
(`PROJECT_READ`, `REPO_WRITE`, …) and gives its HTTP access tokens of a project or
repository the same names. Gitward keeps one model — grant levels for users, scopes for
resource access tokens — and the Server API translates through the tables below (written out
in docs/server-api.md).
"""

from __future__ import annotations

from gitward.domain.permissions import (
    PAT_PERMISSION_LEVELS,
    PROJECT_GRANTS,
    REPOSITORY_GRANTS,
    Level,
    PatPermission,
    ResourceKind,
    Scope,
)

#: A user's grant, as Server's permission name, and back. Gitward's project `create-repo`
#: has no Server name: it is shown as PROJECT_WRITE (the nearest below it), and Server's
#: PROJECT_WRITE sets `write`.
USER_PERMISSIONS: dict[ResourceKind, dict[str, str]] = {
    ResourceKind.PROJECT: {
        "PROJECT_READ": "read",
        "PROJECT_WRITE": "write",
        "PROJECT_ADMIN": "admin",
    },
    ResourceKind.REPOSITORY: {
        "REPO_READ": "read",
        "REPO_WRITE": "write",
        "REPO_ADMIN": "admin",
    },
}


def grant_of(kind: ResourceKind, permission: str) -> str | None:
    """The Gitward grant a Server permission name sets on a project or repository."""
    return USER_PERMISSIONS[kind].get(permission)


def permission_of(kind: ResourceKind, grant: str) -> str:
    """A Gitward grant as Server's permission name (the highest that it reaches)."""
    levels = PROJECT_GRANTS if kind is ResourceKind.PROJECT else REPOSITORY_GRANTS
    held = levels[grant]
    best = ""
    best_level = Level.NONE
    for name, granted in USER_PERMISSIONS[kind].items():
        level = levels[granted]
        if best_level < level <= held:
            best, best_level = name, level
    return best


_REPO_READ = frozenset({Scope.REPOSITORY, Scope.PULLREQUEST})
_REPO_WRITE = _REPO_READ | {Scope.REPOSITORY_WRITE, Scope.PULLREQUEST_WRITE}
_REPO_ADMIN = _REPO_WRITE | {Scope.REPOSITORY_ADMIN, Scope.REPOSITORY_DELETE, Scope.WEBHOOK}

#: The scopes a Server HTTP access token permission grants: what a personal access token
#: holding that permission may do (docs/access-model.md's table), as scopes. Server's levels
#: include the ones below them, and a project permission reaches the project's repositories
#: at the same level, so each row includes the rows below it.
TOKEN_SCOPES: dict[PatPermission, frozenset[Scope]] = {
    PatPermission.REPO_READ: _REPO_READ,
    PatPermission.REPO_WRITE: _REPO_WRITE,
    PatPermission.REPO_ADMIN: _REPO_ADMIN,
    PatPermission.PROJECT_READ: _REPO_READ | {Scope.PROJECT},
    PatPermission.PROJECT_WRITE: _REPO_WRITE | {Scope.PROJECT},
    PatPermission.PROJECT_ADMIN: _REPO_ADMIN | {Scope.PROJECT, Scope.PROJECT_ADMIN},
}


def scopes_of(permissions: list[PatPermission]) -> frozenset[Scope]:
    """The scopes of a token holding `permissions` (the union of their rows)."""
    result: frozenset[Scope] = frozenset()
    for permission in permissions:
        result |= TOKEN_SCOPES[permission]
    return result


def permissions_held(scopes: frozenset[Scope]) -> list[str]:
    """The Server permissions a token's scopes amount to: for projects and for repositories,
    the highest whose whole row it holds (none, for a kind where it holds no full row).
    A token made with Server permissions reads back as them; one made with Cloud scopes
    that match no row exactly shows the rows it covers."""
    names: list[str] = []
    for kind in (ResourceKind.PROJECT, ResourceKind.REPOSITORY):
        best: PatPermission | None = None
        for permission, (of, level) in PAT_PERMISSION_LEVELS.items():
            if of is kind and TOKEN_SCOPES[permission] <= scopes and (
                best is None or PAT_PERMISSION_LEVELS[best][1] < level
            ):
                best = permission
        if best is not None:
            names.append(best.value)
    return names
