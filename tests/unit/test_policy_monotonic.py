"""Caller.decide skips reading grants on public resources when the answer is already yes
without any: that is sound only if grants can never turn an Allowed into a Denied."""

from __future__ import annotations

import itertools

import pytest

from gitward.credentials.personal import PatPermissions
from gitward.domain.identity import AuthContext, Bound, CredentialKind, UserPrincipal
from gitward.domain.permissions import ACTIONS, Level, ResourceKind, WorkspaceRole
from gitward.domain.policy import LiveGrants, Target, authorize

TARGETS = [
    Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=2, repository_id=3,
           is_public=True),
    Target(ResourceKind.PROJECT, workspace_id=1, project_id=2, is_public=True),
]
BOUNDS = [
    Bound(),
    PatPermissions(Level.READ).bound(),
    PatPermissions(Level.WRITE).bound(),
    PatPermissions(Level.ADMIN, Level.ADMIN).bound(),
]
KINDS = [CredentialKind.PASSWORD, CredentialKind.PERSONAL_ACCESS_TOKEN]
GRANTS = [
    LiveGrants(workspace_role=role, project_grant=project, repository_grant=repo,
               is_site_admin=admin)
    for role, project, repo, admin in itertools.product(
        [None, WorkspaceRole.MEMBER, WorkspaceRole.OWNER],
        [Level.NONE, Level.READ, Level.WRITE, Level.CREATE_REPO, Level.ADMIN],
        [Level.NONE, Level.READ, Level.WRITE, Level.ADMIN],
        [False, True],
    )
]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.kind.value)
def test_allowed_without_grants_stays_allowed_with_any(target: Target) -> None:
    actions = [a for a, rule in ACTIONS.items() if rule.resource is target.kind]
    assert actions
    for admin, kind, bound, action in itertools.product([False, True], KINDS, BOUNDS, actions):
        bound = bound if kind is CredentialKind.PERSONAL_ACCESS_TOKEN else Bound()
        ctx = AuthContext(UserPrincipal(7, "u", admin), kind, bound)
        floor = LiveGrants(is_site_admin=admin)
        if not authorize(ctx, action, target, floor):
            continue
        for live in GRANTS:
            if live.is_site_admin != admin:
                continue
            assert authorize(ctx, action, target, live), (action, kind, bound, live)
