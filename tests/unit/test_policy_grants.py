"""Only interactive credentials grant lasting power: which credential may grant which level.

A leaked token with `repository:admin` (or `project:admin`, or REPO_ADMIN / PROJECT_ADMIN)
may manage read and write grants, but granting admin (or workspace ownership) would let the
grantee mint tokens that outlive the leaked one: only an account password or a web session
may. The expected answers are written here as a table, independently of ACTIONS.
"""

from __future__ import annotations

import pytest

from gitward.domain.identity import (
    CREDENTIAL_KINDS,
    AuthContext,
    Bound,
    CredentialKind,
    Reach,
    TokenPrincipal,
    UserPrincipal,
)
from gitward.domain.permissions import (
    ACTIONS,
    GRANTS_NEED,
    ROLES_NEED,
    Level,
    ResourceKind,
    Scope,
    WorkspaceRole,
    implied_scopes,
)
from gitward.domain.policy import DenialCode, Denied, LiveGrants, Target, authorize

REPO = Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=10, repository_id=100)
PROJECT = Target(ResourceKind.PROJECT, workspace_id=1, project_id=10)
WORKSPACE = Target(ResourceKind.WORKSPACE, workspace_id=1)
TARGETS = {ResourceKind.REPOSITORY: REPO, ResourceKind.PROJECT: PROJECT}
OWNER = LiveGrants(workspace_role=WorkspaceRole.OWNER)
ALL_SCOPES = implied_scopes(frozenset(Scope))
USER = UserPrincipal(1, "alice")


def credentials() -> dict[str, AuthContext]:
    """One admin-capable credential of every kind, each held by a workspace owner."""
    reaches = {
        CredentialKind.REPOSITORY_ACCESS_TOKEN: Reach(1, 10, 100),
        CredentialKind.PROJECT_ACCESS_TOKEN: Reach(1, 10),
        CredentialKind.WORKSPACE_ACCESS_TOKEN: Reach(1),
    }
    return {
        "password": AuthContext(USER, CredentialKind.PASSWORD),
        "session": AuthContext(USER, CredentialKind.SESSION),
        "pat (admin)": AuthContext(
            USER, CredentialKind.PERSONAL_ACCESS_TOKEN,
            Bound(pat={ResourceKind.REPOSITORY: Level.ADMIN, ResourceKind.PROJECT: Level.ADMIN}),
            credential_id=7,
        ),
        "app password (all scopes)": AuthContext(
            USER, CredentialKind.APP_PASSWORD, Bound(scopes=ALL_SCOPES), credential_id=8
        ),
        "oauth (all scopes)": AuthContext(
            USER, CredentialKind.OAUTH_USER, Bound(scopes=ALL_SCOPES), credential_id=9
        ),
        **{
            f"{kind.value} (all scopes)": AuthContext(
                TokenPrincipal(5, "ci", kind, "u"), kind, Bound(scopes=ALL_SCOPES, reach=reach),
                credential_id=5,
            )
            for kind, reach in reaches.items()
        },
    }


def _reachable(name: str, kind: ResourceKind) -> bool:
    # A repository token reaches its repository only; it may not act on the project.
    return not (name.startswith("repository_access_token") and kind is ResourceKind.PROJECT)


@pytest.mark.parametrize("name", list(credentials()))
@pytest.mark.parametrize("kind", [ResourceKind.REPOSITORY, ResourceKind.PROJECT])
def test_granting_admin_needs_a_person(name, kind):
    ctx = credentials()[name]
    interactive = CREDENTIAL_KINDS[ctx.credential].interactive
    target = TARGETS[kind]
    for level, action in GRANTS_NEED[kind].items():
        decision = authorize(ctx, action, target, OWNER)
        if level == Level.ADMIN:
            assert bool(decision) is interactive, (name, level)
            if not interactive and _reachable(name, kind):
                assert isinstance(decision, Denied) and decision.code is DenialCode.FORBIDDEN
                assert "grant admin permission" in decision.reason
                assert "sign in with your password" in decision.reason
        else:
            assert bool(decision) is _reachable(name, kind), (name, level, decision)


@pytest.mark.parametrize("name", list(credentials()))
def test_only_a_person_makes_workspace_owners(name):
    ctx = credentials()[name]
    interactive = CREDENTIAL_KINDS[ctx.credential].interactive
    owner = authorize(ctx, ROLES_NEED[WorkspaceRole.OWNER], WORKSPACE, OWNER)
    member = authorize(ctx, ROLES_NEED[WorkspaceRole.MEMBER], WORKSPACE, OWNER)
    assert bool(owner) is interactive
    # No token manages a workspace at all (access-model.md), persons do.
    assert bool(member) is interactive


def test_the_table_covers_every_level_and_role():
    from gitward.domain.permissions import PROJECT_GRANTS, REPOSITORY_GRANTS

    assert set(GRANTS_NEED[ResourceKind.REPOSITORY]) == set(REPOSITORY_GRANTS.values())
    assert set(GRANTS_NEED[ResourceKind.PROJECT]) == set(PROJECT_GRANTS.values())
    assert set(ROLES_NEED) == set(WorkspaceRole)
    for actions in (*GRANTS_NEED.values(), ROLES_NEED):
        for action in (actions.values() if isinstance(actions, dict) else ()):
            rule = ACTIONS[action]
            assert rule.level == Level.ADMIN
    for kind, table in GRANTS_NEED.items():
        assert ACTIONS[table[Level.ADMIN]].interactive_only
        assert ACTIONS[table[Level.ADMIN]].resource is kind
    assert ACTIONS[ROLES_NEED[WorkspaceRole.OWNER]].interactive_only


def test_grant_admin_needs_admin_level_too():
    ctx = AuthContext(USER, CredentialKind.PASSWORD)
    writer = LiveGrants(repository_grant=Level.WRITE, project_grant=Level.WRITE)
    for kind, target in TARGETS.items():
        decision = authorize(ctx, GRANTS_NEED[kind][Level.ADMIN], target, writer)
        assert isinstance(decision, Denied) and decision.code is DenialCode.FORBIDDEN


def test_temporary_password_does_nothing_but_change_itself():
    from gitward.domain.permissions import Action
    from gitward.domain.policy import PASSWORD_CHANGE_REQUIRED

    ctx = AuthContext(UserPrincipal(1, "alice", True), CredentialKind.PASSWORD,
                      must_change_password=True)
    own = Target(ResourceKind.ACCOUNT, user_id=1)
    site_admin = LiveGrants(is_site_admin=True, workspace_role=WorkspaceRole.OWNER)
    for action, rule in ACTIONS.items():
        target = {ResourceKind.REPOSITORY: REPO, ResourceKind.PROJECT: PROJECT,
                  ResourceKind.WORKSPACE: WORKSPACE, ResourceKind.ACCOUNT: own,
                  ResourceKind.SITE: Target(ResourceKind.SITE)}[rule.resource]
        decision = authorize(ctx, action, target, site_admin)
        if action is Action.PASSWORD_CHANGE:
            assert decision
        else:
            assert isinstance(decision, Denied) and decision.reason == PASSWORD_CHANGE_REQUIRED
            assert decision.code is DenialCode.FORBIDDEN
    # Someone else's account, as the user could not see it, stays hidden.
    other = Target(ResourceKind.ACCOUNT, user_id=2)
    plain = authorize(ctx, Action.ACCOUNT_READ, other, LiveGrants())
    assert isinstance(plain, Denied) and plain.code is DenialCode.NOT_FOUND
