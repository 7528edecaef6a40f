"""The policy for OAuth access tokens: user grants are bounded by scopes and the user's live
level; client credentials act inside the consumer's workspace with its scopes; neither ever
manages credentials or workspaces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gitward.domain.identity import (
    AuthContext,
    Bound,
    CredentialKind,
    Reach,
    TokenPrincipal,
    UserPrincipal,
)
from gitward.domain.permissions import (
    ACTIONS,
    Action,
    Level,
    ResourceKind,
    Scope,
    WorkspaceRole,
    implied_scopes,
)
from gitward.domain.policy import (
    Allowed,
    DenialCode,
    Denied,
    LiveGrants,
    Target,
    authorize,
    effective_level,
)

REPO = Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=10, repository_id=100)
OTHER_REPO = Target(ResourceKind.REPOSITORY, workspace_id=2, project_id=20, repository_id=200)
WORKSPACE = Target(ResourceKind.WORKSPACE, workspace_id=1)
OWN_ACCOUNT = Target(ResourceKind.ACCOUNT, user_id=1)
NEVER = (
    Action.CREDENTIAL_CREATE,
    Action.CREDENTIAL_MANAGE,
    Action.REPO_CREDENTIALS,
    Action.PROJECT_CREDENTIALS,
    Action.WORKSPACE_CREDENTIALS,
    Action.WORKSPACE_ADMIN,
    Action.PROJECT_CREATE,
    Action.WORKSPACE_CREATE,
    Action.SITE_ADMIN,
)


def user_token(scopes: set[Scope]) -> AuthContext:
    return AuthContext(
        UserPrincipal(1, "alice"),
        CredentialKind.OAUTH_USER,
        Bound(scopes=implied_scopes(frozenset(scopes))),
        credential_id=7,
    )


def client_token(scopes: set[Scope]) -> AuthContext:
    return AuthContext(
        TokenPrincipal(3, "ci", CredentialKind.OAUTH_CLIENT, "u"),
        CredentialKind.OAUTH_CLIENT,
        Bound(scopes=implied_scopes(frozenset(scopes)), reach=Reach(1)),
        credential_id=8,
    )


OWNER = LiveGrants(workspace_role=WorkspaceRole.OWNER)
ALL_SCOPES = set(Scope)


def target_for(action: Action) -> Target:
    kind = ACTIONS[action].resource
    return {
        ResourceKind.REPOSITORY: REPO,
        ResourceKind.PROJECT: Target(ResourceKind.PROJECT, workspace_id=1, project_id=10),
        ResourceKind.WORKSPACE: WORKSPACE,
        ResourceKind.ACCOUNT: OWN_ACCOUNT,
        ResourceKind.SITE: Target(ResourceKind.SITE),
    }[kind]


def test_no_oauth_token_manages_credentials_or_workspaces():
    for ctx in (user_token(ALL_SCOPES), client_token(ALL_SCOPES)):
        for action in NEVER:
            live = LiveGrants(workspace_role=WorkspaceRole.OWNER, is_site_admin=True)
            assert isinstance(authorize(ctx, action, target_for(action), live), Denied), action


def test_user_grant_needs_scope_and_level():
    assert authorize(user_token({Scope.REPOSITORY}), Action.REPO_READ, REPO, OWNER) == Allowed()
    denied = authorize(user_token({Scope.REPOSITORY}), Action.REPO_WRITE, REPO, OWNER)
    assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN
    assert "repository:write" in denied.reason
    reader = LiveGrants(repository_grant=Level.READ)
    denied = authorize(user_token(ALL_SCOPES), Action.REPO_WRITE, REPO, reader)
    assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN


def test_client_token_stays_in_its_workspace():
    ctx = client_token({Scope.REPOSITORY_WRITE})
    assert authorize(ctx, Action.REPO_WRITE, REPO, LiveGrants()) == Allowed()
    denied = authorize(ctx, Action.REPO_READ, OTHER_REPO, LiveGrants())
    assert isinstance(denied, Denied) and denied.code is DenialCode.NOT_FOUND
    assert isinstance(authorize(ctx, Action.ACCOUNT_READ, OWN_ACCOUNT, LiveGrants()), Denied)


REPO_ACTIONS = [a for a, rule in ACTIONS.items() if rule.resource is ResourceKind.REPOSITORY]


@given(
    scopes=st.sets(st.sampled_from(list(Scope))),
    action=st.sampled_from(REPO_ACTIONS),
    repo_grant=st.sampled_from([Level.NONE, Level.READ, Level.WRITE, Level.ADMIN]),
    project_grant=st.sampled_from(list(Level)),
    role=st.sampled_from([None, WorkspaceRole.MEMBER, WorkspaceRole.OWNER]),
)
def test_user_grant_never_exceeds_scopes_or_live_level(
    scopes, action, repo_grant, project_grant, role
):
    live = LiveGrants(workspace_role=role, project_grant=project_grant, repository_grant=repo_grant)
    rule = ACTIONS[action]
    decision = authorize(user_token(scopes), action, REPO, live)
    if isinstance(decision, Allowed):
        assert rule.scope in implied_scopes(frozenset(scopes))
        assert effective_level(ResourceKind.REPOSITORY, REPO, live) >= rule.level
