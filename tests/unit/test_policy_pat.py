"""Personal access tokens in the policy: (PAT permission × user level × action) as a table,
and a property that no PAT ever exceeds its owner's live level or its own permissions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitward.credentials.personal import PatPermissions, parse_permissions
from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.domain.permissions import ACTIONS, Action, Level, ResourceKind, WorkspaceRole
from gitward.domain.policy import (
    Allowed,
    DenialCode,
    Denied,
    LiveGrants,
    Target,
    authorize,
    effective_level,
)

ALICE = UserPrincipal(1, "alice")
REPO = Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=2, repository_id=3)
PROJECT = Target(ResourceKind.PROJECT, workspace_id=1, project_id=2)
WORKSPACE = Target(ResourceKind.WORKSPACE, workspace_id=1)
OWN_ACCOUNT = Target(ResourceKind.ACCOUNT, user_id=1)

REPO_ACTIONS = [
    a for a, r in ACTIONS.items() if r.resource is ResourceKind.REPOSITORY and r.pat is not None
]
PROJECT_ACTIONS = [
    a for a, r in ACTIONS.items() if r.resource is ResourceKind.PROJECT and r.pat is not None
]
PAT_SETS = [
    ["REPO_READ"],
    ["REPO_WRITE"],
    ["REPO_ADMIN"],
    ["PROJECT_READ", "REPO_READ"],
    ["PROJECT_READ", "REPO_ADMIN"],
    ["PROJECT_WRITE", "REPO_WRITE"],
    ["PROJECT_ADMIN", "REPO_ADMIN"],
]
REPO_GRANTS = [Level.NONE, Level.READ, Level.WRITE, Level.ADMIN]


def pat(permissions: list[str], site_admin: bool = False) -> AuthContext:
    principal = UserPrincipal(1, "alice", is_site_admin=site_admin)
    bound = parse_permissions(permissions).bound()
    return AuthContext(principal, CredentialKind.PERSONAL_ACCESS_TOKEN, bound, credential_id=7)


def password() -> AuthContext:
    return AuthContext(ALICE, CredentialKind.PASSWORD)


def pat_level(perms: PatPermissions, kind: ResourceKind) -> Level:
    if kind is ResourceKind.PROJECT:
        return perms.project or Level.NONE
    return perms.repository


@pytest.mark.parametrize(
    ("permissions", "grant", "action"),
    list(itertools.product(PAT_SETS, REPO_GRANTS, REPO_ACTIONS)),
)
def test_repository_table(permissions, grant, action):
    """Allowed exactly when both the token's REPO_* level and the user's level suffice."""
    live = LiveGrants(repository_grant=grant)
    rule = ACTIONS[action]
    decision = authorize(pat(permissions), action, REPO, live)
    perms = parse_permissions(permissions)
    expected = perms.repository >= rule.pat and grant >= rule.level
    assert bool(decision) is expected, (permissions, grant, action, decision)
    if not expected:
        assert isinstance(decision, Denied)
        # Hidden when the user cannot read the repository at all; otherwise 403.
        code = DenialCode.NOT_FOUND if grant == Level.NONE else DenialCode.FORBIDDEN
        assert decision.code is code
    # The same user with the password gets exactly what the grant gives.
    assert bool(authorize(password(), action, REPO, live)) is (grant >= rule.level)


@pytest.mark.parametrize(
    ("permissions", "grant", "action"),
    list(itertools.product(PAT_SETS, list(Level), PROJECT_ACTIONS)),
)
def test_project_table(permissions, grant, action):
    live = LiveGrants(project_grant=grant)
    rule = ACTIONS[action]
    perms = parse_permissions(permissions)
    expected = pat_level(perms, ResourceKind.PROJECT) >= rule.pat and grant >= rule.level
    assert bool(authorize(pat(permissions), action, PROJECT, live)) is expected


@pytest.mark.parametrize("permissions", PAT_SETS)
@pytest.mark.parametrize(
    ("action", "target"),
    [
        (Action.WORKSPACE_ADMIN, WORKSPACE),
        (Action.WORKSPACE_CREDENTIALS, WORKSPACE),
        (Action.PROJECT_CREDENTIALS, PROJECT),
        (Action.REPO_CREDENTIALS, REPO),
        (Action.PROJECT_CREATE, WORKSPACE),
        (Action.WORKSPACE_CREATE, OWN_ACCOUNT),
        (Action.CREDENTIAL_CREATE, OWN_ACCOUNT),
        (Action.CREDENTIAL_MANAGE, OWN_ACCOUNT),
        (Action.SITE_ADMIN, Target(ResourceKind.SITE)),
    ],
)
def test_never_by_pat(permissions, action, target):
    """Workspace and site administration and credential management: never by a PAT, whatever
    its owner can do."""
    live = LiveGrants(
        workspace_role=WorkspaceRole.OWNER,
        project_grant=Level.ADMIN,
        repository_grant=Level.ADMIN,
        is_site_admin=True,
    )
    decision = authorize(pat(permissions, site_admin=True), action, target, live)
    assert isinstance(decision, Denied) and decision.code is DenialCode.FORBIDDEN
    assert authorize(password(), action, target, live) == Allowed()


def test_any_pat_reads_its_own_account():
    for permissions in PAT_SETS:
        assert authorize(pat(permissions), Action.ACCOUNT_READ, OWN_ACCOUNT, LiveGrants())


def test_pat_rotates_only_itself():
    ctx = pat(["REPO_READ"])
    itself = Target(
        ResourceKind.ACCOUNT,
        user_id=1,
        credential_kind=CredentialKind.PERSONAL_ACCESS_TOKEN,
        credential_id=7,
    )
    other = Target(
        ResourceKind.ACCOUNT,
        user_id=1,
        credential_kind=CredentialKind.PERSONAL_ACCESS_TOKEN,
        credential_id=8,
    )
    assert authorize(ctx, Action.CREDENTIAL_ROTATE, itself, LiveGrants())
    assert not authorize(ctx, Action.CREDENTIAL_ROTATE, other, LiveGrants())
    assert authorize(password(), Action.CREDENTIAL_ROTATE, other, LiveGrants())
    # Someone else's token: not even a site administrator with the password.
    root = AuthContext(UserPrincipal(2, "root", True), CredentialKind.PASSWORD)
    assert not authorize(root, Action.CREDENTIAL_ROTATE, other, LiveGrants(is_site_admin=True))


def test_deactivated_owner_gets_nothing():
    live = LiveGrants(repository_grant=Level.ADMIN, active=False)
    for action in REPO_ACTIONS:
        assert not authorize(pat(["REPO_ADMIN"]), action, REPO, live)


levels = st.sampled_from(list(Level))
roles = st.sampled_from([None, WorkspaceRole.MEMBER, WorkspaceRole.OWNER])


@given(
    permissions=st.sampled_from(PAT_SETS),
    repo_grant=st.sampled_from(REPO_GRANTS),
    project_grant=levels,
    role=roles,
    public=st.booleans(),
    site_admin=st.booleans(),
    action=st.sampled_from(REPO_ACTIONS + PROJECT_ACTIONS),
)
def test_no_pat_exceeds_owner_or_itself(
    permissions, repo_grant, project_grant, role, public, site_admin, action
):
    rule = ACTIONS[action]
    target = REPO if rule.resource is ResourceKind.REPOSITORY else PROJECT
    target = Target(
        target.kind,
        workspace_id=target.workspace_id,
        project_id=target.project_id,
        repository_id=target.repository_id,
        is_public=public,
    )
    live = LiveGrants(
        workspace_role=role,
        project_grant=project_grant,
        repository_grant=repo_grant,
        is_site_admin=site_admin,
    )
    decision = authorize(pat(permissions, site_admin), action, target, live)
    if decision:
        perms = parse_permissions(permissions)
        held = pat_level(perms, rule.resource)
        assert rule.pat is not None and held >= rule.pat
        assert effective_level(rule.resource, target, live) >= rule.level
