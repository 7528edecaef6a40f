"""The Server surface's pure pieces: `latest` as `1.0`, and the tables that turn Server's
permission names into Gitward's grants and scopes."""

from __future__ import annotations

import itertools

import pytest

from gitward.domain.permissions import (
    PAT_PERMISSION_LEVELS,
    PROJECT_GRANTS,
    REPOSITORY_GRANTS,
    PatPermission,
    ResourceKind,
    Scope,
    implied_scopes,
)
from gitward.domain.server_permissions import (
    TOKEN_SCOPES,
    USER_PERMISSIONS,
    grant_of,
    permission_of,
    permissions_held,
    scopes_of,
)
from gitward.web.server_api.surface import alias


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/latest/projects", "/api/1.0/projects"),
        ("/api/latest", "/api/1.0"),
        ("/access-tokens/latest/users/alice", "/access-tokens/1.0/users/alice"),
        ("/branch-utils/latest/projects/K/repos/r/branches",
         "/branch-utils/1.0/projects/K/repos/r/branches"),
        ("/api/1.0/projects/latest", None),  # a project named LATEST stays one
        ("/api/latestx/projects", None),
        ("/api/1.0/projects", None),
        ("/latest/api", None),
        ("/api//latest/x", None),
    ],
)
def test_latest_alias(path, expected):
    assert alias(path) == expected


def test_user_permissions_round_trip():
    for kind, table in USER_PERMISSIONS.items():
        for permission, grant in table.items():
            assert grant_of(kind, permission) == grant
            assert permission_of(kind, grant) == permission
    # Every Gitward grant has a Server name: create-repo reads as the nearest below it.
    assert {permission_of(ResourceKind.PROJECT, g) for g in PROJECT_GRANTS} == set(
        USER_PERMISSIONS[ResourceKind.PROJECT])
    assert permission_of(ResourceKind.PROJECT, "create-repo") == "PROJECT_WRITE"
    assert {permission_of(ResourceKind.REPOSITORY, g) for g in REPOSITORY_GRANTS} == set(
        USER_PERMISSIONS[ResourceKind.REPOSITORY])
    assert grant_of(ResourceKind.PROJECT, "REPO_READ") is None
    assert grant_of(ResourceKind.REPOSITORY, "PROJECT_ADMIN") is None


def test_token_scopes_grow_with_the_level_and_are_closed():
    by_kind = {kind: [p for p, (k, _) in PAT_PERMISSION_LEVELS.items() if k is kind]
               for kind in (ResourceKind.PROJECT, ResourceKind.REPOSITORY)}
    for permissions in by_kind.values():
        ordered = sorted(permissions, key=lambda p: PAT_PERMISSION_LEVELS[p][1])
        for lower, higher in itertools.pairwise(ordered):
            assert TOKEN_SCOPES[lower] < TOKEN_SCOPES[higher], (lower, higher)
    for scopes in TOKEN_SCOPES.values():
        assert implied_scopes(scopes) == scopes  # nothing implied is left out
    # A project permission reaches the project's repositories at the same level.
    for level in ("READ", "WRITE", "ADMIN"):
        assert TOKEN_SCOPES[PatPermission("REPO_" + level)] <= TOKEN_SCOPES[
            PatPermission("PROJECT_" + level)]
    # Repository permissions never carry project scopes (repository tokens cannot hold them).
    for permission in by_kind[ResourceKind.REPOSITORY]:
        assert not TOKEN_SCOPES[permission] & {Scope.PROJECT, Scope.PROJECT_ADMIN}


@pytest.mark.parametrize(
    "permissions",
    [["REPO_READ"], ["REPO_WRITE"], ["REPO_ADMIN"], ["PROJECT_READ", "REPO_READ"],
     ["PROJECT_WRITE", "REPO_WRITE"], ["PROJECT_ADMIN", "REPO_ADMIN"]],
)
def test_permissions_read_back(permissions):
    held = [PatPermission(p) for p in permissions]
    assert permissions_held(scopes_of(held)) == permissions


def test_permissions_read_back_as_what_they_grant():
    # PROJECT_READ with REPO_WRITE grants what PROJECT_WRITE with REPO_WRITE grants.
    held = [PatPermission.PROJECT_READ, PatPermission.REPO_WRITE]
    assert permissions_held(scopes_of(held)) == ["PROJECT_WRITE", "REPO_WRITE"]
    held = [PatPermission.PROJECT_READ, PatPermission.REPO_ADMIN]
    assert permissions_held(scopes_of(held)) == ["PROJECT_WRITE", "REPO_ADMIN"]
    # Cloud scopes that fill no row show no permission of that kind.
    assert permissions_held(frozenset({Scope.REPOSITORY})) == []
    assert permissions_held(frozenset({Scope.REPOSITORY, Scope.PULLREQUEST, Scope.PROJECT})) == [
        "PROJECT_READ", "REPO_READ"]
