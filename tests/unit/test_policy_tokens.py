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


def token(kind: str, scopes: frozenset[Scope]) -> AuthContext:
    spec = SPECS[kind]
    reach = {
        "repository": Reach(1, 11, 111),
        "project": Reach(1, 11),
        "workspace": Reach(1),
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
    ctx = token("workspace", frozenset({Scope.REPOSITORY}))
    public_elsewhere = next(t for t in REPOS if t.workspace_id == 2 and t.is_public)
    from gitward.domain.permissions import Action

    decision = authorize(ctx, Action.REPO_READ, public_elsewhere, LiveGrants())
    assert isinstance(decision, Denied) and decision.code is DenialCode.NOT_FOUND
