"""Resource access tokens in the policy: a token never reaches outside its resource, never
exceeds its scopes, and never does what no token may do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gitward.credentials.resource import SPECS
from gitward.domain.identity import AuthContext, Bound, Reach, TokenPrincipal
from gitward.domain.permissions import ACTIONS, ResourceKind, Scope, implied_scopes
from gitward.domain.policy import DenialCode, Denied, LiveGrants, Target, _within, authorize

# Two workspaces, two projects each, two repositories per project.
REPOS = [
    Target(ResourceKind.REPOSITORY, workspace_id=w, project_id=w * 10 + p,
           repository_id=w * 100 + p * 10 + r, is_public=bool(r))
    for w in (1, 2) for p in (1, 2) for r in (1, 2)
]
PROJECTS = [Target(ResourceKind.PROJECT, workspace_id=w, project_id=w * 10 + p)
            for w in (1, 2) for p in (1, 2)]
WORKSPACES = [Target(ResourceKind.WORKSPACE, workspace_id=w) for w in (1, 2)]
TARGETS = REPOS + PROJECTS + WORKSPACES


def token(kind: ResourceKind, scopes: frozenset[Scope]) -> AuthContext:
    spec = SPECS[kind]
    reach = {
        ResourceKind.REPOSITORY: Reach(1, 11, 111),
        ResourceKind.PROJECT: Reach(1, 11),
        ResourceKind.WORKSPACE: Reach(1),
    }[kind]
    return AuthContext(
        TokenPrincipal(5, "ci", spec.credential, "u"),
        spec.credential,
        Bound(scopes=implied_scopes(scopes), reach=reach),
        credential_id=5,
    )


@given(
    kind=st.sampled_from(list(SPECS)),
    scopes=st.frozensets(st.sampled_from(list(Scope))),
    action=st.sampled_from(list(ACTIONS)),
    target=st.sampled_from(TARGETS),
)
def test_no_token_reaches_outside_or_beyond_scopes(kind, scopes, action, target):
    rule = ACTIONS[action]
    if target.kind is not rule.resource:
        return
    ctx = token(kind, scopes)
    decision = authorize(ctx, action, target, LiveGrants())
    if decision:
        assert ctx.bound.reach is not None and _within(ctx.bound.reach, target)
        assert rule.scope_free or rule.scope in implied_scopes(scopes)
        assert (not rule.interactive_only and rule.scope is not None) or rule.scope_free
    elif ctx.bound.reach is not None and not _within(ctx.bound.reach, target):
        # Outside its resource a token sees nothing: 404, never 403.
        assert isinstance(decision, Denied) and decision.code is DenialCode.NOT_FOUND


def test_public_repository_elsewhere_is_not_reached():
    ctx = token(ResourceKind.WORKSPACE, frozenset({Scope.REPOSITORY}))
    public_elsewhere = next(t for t in REPOS if t.workspace_id == 2 and t.is_public)
    from gitward.domain.permissions import Action

    decision = authorize(ctx, Action.REPO_READ, public_elsewhere, LiveGrants())
    assert isinstance(decision, Denied) and decision.code is DenialCode.NOT_FOUND


# -- app passwords: min(scopes, the user's live levels) ------------------------------------------

from gitward.domain.identity import CredentialKind, UserPrincipal  # noqa: E402
from gitward.domain.permissions import Level, WorkspaceRole  # noqa: E402
from gitward.domain.policy import effective_level  # noqa: E402


@given(
    scopes=st.frozensets(st.sampled_from(list(Scope))),
    action=st.sampled_from(list(ACTIONS)),
    target=st.sampled_from(REPOS + PROJECTS + WORKSPACES),
    repo_grant=st.sampled_from([Level.NONE, Level.READ, Level.WRITE, Level.ADMIN]),
    project_grant=st.sampled_from(list(Level)),
    role=st.sampled_from([None, WorkspaceRole.MEMBER, WorkspaceRole.OWNER]),
)
def test_app_password_never_exceeds_scopes_or_user(
    scopes, action, target, repo_grant, project_grant, role
):
    rule = ACTIONS[action]
    if target.kind is not rule.resource:
        return
    ctx = AuthContext(
        UserPrincipal(1, "alice"),
        CredentialKind.APP_PASSWORD,
        Bound(scopes=implied_scopes(scopes)),
        credential_id=3,
    )
    live = LiveGrants(workspace_role=role, project_grant=project_grant,
                      repository_grant=repo_grant)
    if authorize(ctx, action, target, live):
        assert not rule.interactive_only
        assert rule.scope_free or rule.scope in implied_scopes(scopes)
        assert effective_level(rule.resource, target, live) >= rule.level


def test_app_password_scope_table():
    """repository:write pushes for a writer, not for a reader; repository alone never pushes."""
    from gitward.domain.permissions import Action

    repo = REPOS[0]
    def ctx(*names):
        return AuthContext(UserPrincipal(1, "alice"), CredentialKind.APP_PASSWORD,
                           Bound(scopes=implied_scopes(frozenset(Scope(n) for n in names))))
    writer = LiveGrants(repository_grant=Level.WRITE)
    reader = LiveGrants(repository_grant=Level.READ)
    assert authorize(ctx("repository:write"), Action.REPO_WRITE, repo, writer)
    assert not authorize(ctx("repository:write"), Action.REPO_WRITE, repo, reader)
    denied = authorize(ctx("repository"), Action.REPO_WRITE, repo, writer)
    assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN
    assert denied.reason.endswith("repository:write")
    assert not authorize(ctx("repository:write"), Action.CREDENTIAL_CREATE,
                         Target(ResourceKind.ACCOUNT, user_id=1), LiveGrants())
