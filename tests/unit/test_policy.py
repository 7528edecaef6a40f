"""The access policy as tables: effective levels, the user-level column of the actions table
in docs/access-model.md, and the 404-vs-403-vs-401 rules, for the account password and for
anonymous callers.

The expected levels are computed here by an oracle written from the level rules of
docs/access-model.md, independently of `policy.effective_level`, so that a mistake in one is
caught by the other.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitward.domain.identity import ANONYMOUS_CONTEXT, AuthContext, CredentialKind, UserPrincipal
from gitward.domain.permissions import (
    ACTIONS,
    SCOPE_IMPLIES,
    Action,
    Level,
    ResourceKind,
    Scope,
    UnknownScope,
    WorkspaceRole,
    implied_scopes,
    parse_scopes,
)
from gitward.domain.policy import (
    SITE,
    Allowed,
    DenialCode,
    Denied,
    LiveGrants,
    Target,
    authorize,
)

ALICE_ID = 1
OTHER_ID = 2
ALICE = AuthContext(UserPrincipal(ALICE_ID, "alice"), CredentialKind.PASSWORD)
ALICE_SESSION = AuthContext(UserPrincipal(ALICE_ID, "alice"), CredentialKind.SESSION)


def repo(public: bool = False) -> Target:
    return Target(
        ResourceKind.REPOSITORY, workspace_id=1, project_id=10, repository_id=100, is_public=public
    )


def project(public: bool = False) -> Target:
    return Target(ResourceKind.PROJECT, workspace_id=1, project_id=10, is_public=public)


WORKSPACE = Target(ResourceKind.WORKSPACE, workspace_id=1)
OWN_ACCOUNT = Target(ResourceKind.ACCOUNT, user_id=ALICE_ID)
OTHER_ACCOUNT = Target(ResourceKind.ACCOUNT, user_id=OTHER_ID)

#: docs/access-model.md's "user level needed" column, transcribed here (not read from ACTIONS).
NEEDED: dict[Action, tuple[ResourceKind, Level]] = {
    Action.REPO_READ: (ResourceKind.REPOSITORY, Level.READ),
    Action.REPO_WRITE: (ResourceKind.REPOSITORY, Level.WRITE),
    # Build statuses: reported with read access, as on Bitbucket; replacing another
    # caller's status needs admin.
    Action.BUILD_STATUS_READ: (ResourceKind.REPOSITORY, Level.READ),
    Action.BUILD_STATUS_WRITE: (ResourceKind.REPOSITORY, Level.READ),
    Action.BUILD_STATUS_OVERWRITE: (ResourceKind.REPOSITORY, Level.ADMIN),
    Action.PULLREQUEST_READ: (ResourceKind.REPOSITORY, Level.READ),
    Action.PULLREQUEST_WRITE: (ResourceKind.REPOSITORY, Level.WRITE),
    Action.WEBHOOK_MANAGE: (ResourceKind.REPOSITORY, Level.ADMIN),
    Action.PROJECT_WEBHOOK_MANAGE: (ResourceKind.PROJECT, Level.ADMIN),
    Action.WORKSPACE_WEBHOOK_MANAGE: (ResourceKind.WORKSPACE, Level.ADMIN),
    Action.REPO_ADMIN: (ResourceKind.REPOSITORY, Level.ADMIN),
    Action.REPO_DELETE: (ResourceKind.REPOSITORY, Level.ADMIN),
    Action.PROJECT_READ: (ResourceKind.PROJECT, Level.READ),
    Action.PROJECT_CREATE_REPO: (ResourceKind.PROJECT, Level.CREATE_REPO),
    Action.PROJECT_ADMIN: (ResourceKind.PROJECT, Level.ADMIN),
    # Workspace: READ = member, ADMIN = owner. Creating projects is owners' business.
    Action.PROJECT_CREATE: (ResourceKind.WORKSPACE, Level.ADMIN),
    Action.WORKSPACE_READ: (ResourceKind.WORKSPACE, Level.READ),
    Action.WORKSPACE_ADMIN: (ResourceKind.WORKSPACE, Level.ADMIN),
    # Account actions. The account's own user holds ADMIN on it, a site administrator WRITE:
    # enough to read it and to list, modify and revoke its credentials, never to
    # create or rotate one (that would hand the administrator a secret of someone else's).
    Action.ACCOUNT_READ: (ResourceKind.ACCOUNT, Level.READ),
    Action.EMAIL_READ: (ResourceKind.ACCOUNT, Level.READ),
    Action.CREDENTIAL_CREATE: (ResourceKind.ACCOUNT, Level.ADMIN),
    Action.CREDENTIAL_MANAGE: (ResourceKind.ACCOUNT, Level.WRITE),
    Action.CREDENTIAL_ROTATE: (ResourceKind.ACCOUNT, Level.ADMIN),
    Action.WORKSPACE_CREATE: (ResourceKind.ACCOUNT, Level.ADMIN),
    # Resource access tokens: the resource's admins.
    Action.REPO_CREDENTIALS: (ResourceKind.REPOSITORY, Level.ADMIN),
    Action.PROJECT_CREDENTIALS: (ResourceKind.PROJECT, Level.ADMIN),
    Action.WORKSPACE_CREDENTIALS: (ResourceKind.WORKSPACE, Level.ADMIN),
    Action.SITE_ADMIN: (ResourceKind.SITE, Level.ADMIN),
    # Only the account's own user changes its password.
    Action.PASSWORD_CHANGE: (ResourceKind.ACCOUNT, Level.ADMIN),
    # Granting admin needs admin, as managing grants does (and, by ACTIONS, an interactive
    # credential: test_policy_tokens.py).
    Action.REPO_GRANT_ADMIN: (ResourceKind.REPOSITORY, Level.ADMIN),
    Action.PROJECT_GRANT_ADMIN: (ResourceKind.PROJECT, Level.ADMIN),
    Action.WORKSPACE_GRANT_OWNER: (ResourceKind.WORKSPACE, Level.ADMIN),
}


#: Actions no anonymous caller may do, even on what is public (docs/access-model.md).
SIGNED_IN_ONLY = {Action.BUILD_STATUS_WRITE, Action.BUILD_STATUS_OVERWRITE}


def test_every_action_is_in_the_table():
    assert set(NEEDED) == set(Action)
    for action, (kind, level) in NEEDED.items():
        assert ACTIONS[action].resource is kind, action
        assert ACTIONS[action].level == level, action


def expected_level(kind: ResourceKind, target: Target, live: LiveGrants) -> Level:
    """The level rules of docs/access-model.md, written out plainly."""
    if not live.active:
        return Level.NONE
    if kind is ResourceKind.ACCOUNT:
        if target.user_id == ALICE_ID:
            return Level.ADMIN
        return Level.WRITE if live.is_site_admin else Level.NONE
    if live.is_site_admin:
        return Level.ADMIN
    owner = live.workspace_role is WorkspaceRole.OWNER
    candidates = [Level.NONE]
    if kind is ResourceKind.REPOSITORY:
        candidates.append(live.repository_grant)
        project_on_repo = {
            Level.NONE: Level.NONE,
            Level.READ: Level.READ,
            Level.WRITE: Level.WRITE,
            Level.CREATE_REPO: Level.WRITE,
            Level.ADMIN: Level.ADMIN,
        }[live.project_grant]
        candidates.append(project_on_repo)
        if owner:
            candidates.append(Level.ADMIN)
        if target.is_public:
            candidates.append(Level.READ)
    elif kind is ResourceKind.PROJECT:
        candidates.append(live.project_grant)
        if owner:
            candidates.append(Level.ADMIN)
        if target.is_public:
            candidates.append(Level.READ)
    elif kind is ResourceKind.WORKSPACE:
        if owner:
            candidates.append(Level.ADMIN)
        elif live.workspace_role is WorkspaceRole.MEMBER:
            candidates.append(Level.READ)
    return max(candidates)


# -- effective levels ------------------------------------------------------------------------

R, W, C, A, N = Level.READ, Level.WRITE, Level.CREATE_REPO, Level.ADMIN, Level.NONE
OWNER, MEMBER = WorkspaceRole.OWNER, WorkspaceRole.MEMBER

# (description, live grants, public?, expected repository level, expected project level)
LEVEL_CASES = [
    ("nothing", LiveGrants(), False, N, N),
    ("nothing, public", LiveGrants(), True, R, R),
    ("member only", LiveGrants(workspace_role=MEMBER), False, N, N),
    ("member, public", LiveGrants(workspace_role=MEMBER), True, R, R),
    ("owner", LiveGrants(workspace_role=OWNER), False, A, A),
    ("repo read", LiveGrants(repository_grant=R), False, R, N),
    ("repo write", LiveGrants(repository_grant=W), False, W, N),
    ("repo admin", LiveGrants(repository_grant=A), False, A, N),
    ("repo write, public", LiveGrants(repository_grant=W), True, W, R),
    ("project read", LiveGrants(project_grant=R), False, R, R),
    ("project write", LiveGrants(project_grant=W), False, W, W),
    ("project create-repo", LiveGrants(project_grant=C), False, W, C),
    ("project admin", LiveGrants(project_grant=A), False, A, A),
    ("repo read + project write", LiveGrants(repository_grant=R, project_grant=W), False, W, W),
    ("repo admin + project read", LiveGrants(repository_grant=A, project_grant=R), False, A, R),
    ("create-repo + repo admin", LiveGrants(repository_grant=A, project_grant=C), False, A, C),
    ("site admin", LiveGrants(is_site_admin=True), False, A, A),
    (
        "deactivated owner and site admin",
        LiveGrants(workspace_role=OWNER, is_site_admin=True, project_grant=A, active=False),
        True,
        N,
        N,
    ),
]


@pytest.mark.parametrize(
    ("live", "public", "repo_level", "project_level"),
    [case[1:] for case in LEVEL_CASES],
    ids=[case[0] for case in LEVEL_CASES],
)
def test_oracle_matches_the_written_cases(live, public, repo_level, project_level):
    assert expected_level(ResourceKind.REPOSITORY, repo(public), live) == repo_level
    assert expected_level(ResourceKind.PROJECT, project(public), live) == project_level


def _target_for(kind: ResourceKind, public: bool, own: bool = True) -> Target:
    return {
        ResourceKind.REPOSITORY: repo(public),
        ResourceKind.PROJECT: project(public),
        ResourceKind.WORKSPACE: WORKSPACE,
        ResourceKind.ACCOUNT: OWN_ACCOUNT if own else OTHER_ACCOUNT,
        ResourceKind.SITE: SITE,
    }[kind]


def _visible(kind: ResourceKind, level: Level, live: LiveGrants) -> bool:
    """Seeing a thing = reading it. The site is plainly there for every signed-in user, and
    site administrators see every account (without acting in it)."""
    if kind is ResourceKind.SITE:
        return True
    if kind is ResourceKind.ACCOUNT and live.active and live.is_site_admin:
        return True
    return level >= Level.READ


PASSWORD_CASES = [
    (case[0], action, case[1], case[2])
    for case, action in itertools.product(LEVEL_CASES, list(Action))
]


@pytest.mark.parametrize(
    ("ctx",), [(ALICE,), (ALICE_SESSION,)], ids=["password", "session"]
)
@pytest.mark.parametrize(
    ("action", "live", "public"),
    [case[1:] for case in PASSWORD_CASES],
    ids=[f"{case[0]}-{case[1].value}" for case in PASSWORD_CASES],
)
def test_interactive_user(ctx, action, live, public):
    kind, needed = NEEDED[action]
    for own in (True, False) if kind is ResourceKind.ACCOUNT else (True,):
        target = _target_for(kind, public, own)
        level = expected_level(kind, target, live)
        if kind is ResourceKind.SITE:
            level = Level.ADMIN if live.active and live.is_site_admin else Level.NONE
        decision = authorize(ctx, action, target, live)
        if level >= needed:
            assert isinstance(decision, Allowed), (action, live, public, own, decision)
            continue
        assert isinstance(decision, Denied), (action, live, public, own)
        if _visible(kind, level, live):
            assert decision.code is DenialCode.FORBIDDEN, (action, live, decision)
            assert decision.reason, "a 403 says what is missing"
        else:
            assert decision.code is DenialCode.NOT_FOUND, (action, live, decision)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("public", [False, True])
def test_anonymous(action, public):
    """Anonymous callers read what is public; everything else asks for credentials (401)."""
    kind, needed = NEEDED[action]
    target = _target_for(kind, public)
    decision = authorize(ANONYMOUS_CONTEXT, action, target, LiveGrants())
    public_read = public and kind in (ResourceKind.REPOSITORY, ResourceKind.PROJECT)
    if public_read and needed <= Level.READ and action not in SIGNED_IN_ONLY:
        assert isinstance(decision, Allowed)
    else:
        assert isinstance(decision, Denied)
        assert decision.code is DenialCode.UNAUTHENTICATED, decision


def test_hidden_repository_is_not_found_but_visible_one_is_forbidden():
    hidden = authorize(ALICE, Action.REPO_WRITE, repo(), LiveGrants(workspace_role=MEMBER))
    assert hidden == Denied(DenialCode.NOT_FOUND, hidden.reason)
    visible = authorize(ALICE, Action.REPO_WRITE, repo(), LiveGrants(repository_grant=R))
    assert isinstance(visible, Denied) and visible.code is DenialCode.FORBIDDEN
    assert "write" in visible.reason
    public = authorize(ALICE, Action.REPO_ADMIN, repo(public=True), LiveGrants())
    assert isinstance(public, Denied) and public.code is DenialCode.FORBIDDEN
    assert "admin" in public.reason


def test_create_repo_grant_acts_as_write_on_repositories_not_admin():
    live = LiveGrants(project_grant=C)
    assert authorize(ALICE, Action.PROJECT_CREATE_REPO, project(), live)
    assert authorize(ALICE, Action.REPO_WRITE, repo(), live)
    assert authorize(ALICE, Action.PULLREQUEST_WRITE, repo(), live)
    denied = authorize(ALICE, Action.REPO_ADMIN, repo(), live)
    assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN
    assert not authorize(ALICE, Action.PROJECT_ADMIN, project(), live)


def test_project_write_does_not_create_repositories():
    denied = authorize(ALICE, Action.PROJECT_CREATE_REPO, project(), LiveGrants(project_grant=W))
    assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN


def test_repository_grant_does_not_reveal_the_project():
    denied = authorize(ALICE, Action.PROJECT_READ, project(), LiveGrants(repository_grant=A))
    assert isinstance(denied, Denied) and denied.code is DenialCode.NOT_FOUND


def test_site_admin_is_refused_with_403_to_signed_in_users_401_to_anonymous():
    denied = authorize(ALICE, Action.SITE_ADMIN, SITE, LiveGrants())
    assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN
    anonymous = authorize(ANONYMOUS_CONTEXT, Action.SITE_ADMIN, SITE, LiveGrants())
    assert isinstance(anonymous, Denied) and anonymous.code is DenialCode.UNAUTHENTICATED
    assert authorize(ALICE, Action.SITE_ADMIN, SITE, LiveGrants(is_site_admin=True))


def test_another_users_account_is_not_found():
    for action in (Action.ACCOUNT_READ, Action.CREDENTIAL_CREATE, Action.WORKSPACE_CREATE):
        denied = authorize(ALICE, action, OTHER_ACCOUNT, LiveGrants())
        assert isinstance(denied, Denied) and denied.code is DenialCode.NOT_FOUND


def test_site_admin_manages_but_never_creates_others_credentials():
    admin = LiveGrants(is_site_admin=True)
    for action in (Action.CREDENTIAL_CREATE, Action.CREDENTIAL_ROTATE, Action.WORKSPACE_CREATE):
        denied = authorize(ALICE, action, OTHER_ACCOUNT, admin)
        assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN
    for action in (Action.ACCOUNT_READ, Action.CREDENTIAL_MANAGE):
        assert authorize(ALICE, action, OTHER_ACCOUNT, admin)


@pytest.mark.parametrize("action", list(Action))
def test_deactivated_user_has_nothing(action):
    kind, _ = NEEDED[action]
    live = LiveGrants(
        workspace_role=OWNER,
        project_grant=A,
        repository_grant=A,
        is_site_admin=True,
        active=False,
    )
    decision = authorize(ALICE, action, _target_for(kind, public=True), live)
    assert isinstance(decision, Denied)
    if kind is not ResourceKind.SITE:
        assert decision.code is DenialCode.NOT_FOUND


def test_action_on_the_wrong_kind_of_target_is_a_programming_error():
    with pytest.raises(ValueError):
        authorize(ALICE, Action.REPO_READ, project(), LiveGrants())


# -- property: never more than the effective level -------------------------------------------

live_grants = st.builds(
    LiveGrants,
    workspace_role=st.sampled_from([None, OWNER, MEMBER]),
    project_grant=st.sampled_from([N, R, W, C, A]),
    repository_grant=st.sampled_from([N, R, W, A]),
    is_site_admin=st.booleans(),
    active=st.booleans(),
)
contexts = st.sampled_from([ALICE, ALICE_SESSION, ANONYMOUS_CONTEXT])


@given(
    ctx=contexts,
    action=st.sampled_from(list(Action)),
    live=live_grants,
    public=st.booleans(),
    own=st.booleans(),
)
def test_never_allows_beyond_the_effective_level(ctx, action, live, public, own):
    kind, needed = NEEDED[action]
    target = _target_for(kind, public, own)
    if ctx.is_anonymous:
        # Anonymous has no grants: at most `read` on public things.
        public_read = public and kind in (ResourceKind.REPOSITORY, ResourceKind.PROJECT)
        level = Level.READ if public_read and action not in SIGNED_IN_ONLY else Level.NONE
        live = LiveGrants()
    elif kind is ResourceKind.SITE:
        level = Level.ADMIN if live.active and live.is_site_admin else Level.NONE
    else:
        level = expected_level(kind, target, live)
    decision = authorize(ctx, action, target, live)
    if needed > level:
        assert isinstance(decision, Denied), (ctx, action, live, public)
    else:
        assert isinstance(decision, Allowed), (ctx, action, live, public, decision)


# -- scopes ----------------------------------------------------------------------------------

#: The scope implications of docs/access-model.md, closed by hand.
CLOSURES: dict[Scope, set[Scope]] = {
    Scope.REPOSITORY: {Scope.REPOSITORY},
    Scope.REPOSITORY_WRITE: {Scope.REPOSITORY_WRITE, Scope.REPOSITORY},
    Scope.REPOSITORY_ADMIN: {Scope.REPOSITORY_ADMIN},
    Scope.REPOSITORY_DELETE: {Scope.REPOSITORY_DELETE},
    Scope.PULLREQUEST: {Scope.PULLREQUEST, Scope.REPOSITORY},
    Scope.PULLREQUEST_WRITE: {
        Scope.PULLREQUEST_WRITE,
        Scope.PULLREQUEST,
        Scope.REPOSITORY_WRITE,
        Scope.REPOSITORY,
    },
    Scope.WEBHOOK: {Scope.WEBHOOK},
    Scope.PROJECT: {Scope.PROJECT, Scope.REPOSITORY},
    Scope.PROJECT_ADMIN: {Scope.PROJECT_ADMIN, Scope.PROJECT, Scope.REPOSITORY},
    Scope.ACCOUNT: {Scope.ACCOUNT},
    Scope.ACCOUNT_WRITE: {Scope.ACCOUNT_WRITE, Scope.ACCOUNT},
    Scope.EMAIL: {Scope.EMAIL},
}


def test_every_scope_has_a_closure_case():
    assert set(CLOSURES) == set(Scope) == set(SCOPE_IMPLIES)


@pytest.mark.parametrize("scope", list(Scope))
def test_scope_closure(scope):
    assert implied_scopes(frozenset({scope})) == frozenset(CLOSURES[scope])


def test_admin_and_delete_imply_nothing_else():
    assert implied_scopes(frozenset({Scope.REPOSITORY_ADMIN, Scope.REPOSITORY_DELETE})) == {
        Scope.REPOSITORY_ADMIN,
        Scope.REPOSITORY_DELETE,
    }


@given(st.sets(st.sampled_from(list(Scope))))
def test_closure_is_a_closure(scopes):
    closed = implied_scopes(frozenset(scopes))
    assert closed >= scopes
    assert implied_scopes(closed) == closed
    assert closed == frozenset().union(*(CLOSURES[s] for s in scopes))


def test_parse_scopes_accepts_lists_and_strings():
    assert parse_scopes(["repository", "pullrequest:write"]) == {
        Scope.REPOSITORY,
        Scope.PULLREQUEST_WRITE,
    }
    assert parse_scopes("repository:write, project  account") == {
        Scope.REPOSITORY_WRITE,
        Scope.PROJECT,
        Scope.ACCOUNT,
    }
    assert parse_scopes([]) == frozenset()


@pytest.mark.parametrize(
    "name", ["repository:read", "Repository", "admin", "snippet", "pipeline:variable", " x"]
)
def test_parse_scopes_refuses_unknown_names(name):
    with pytest.raises(UnknownScope) as caught:
        parse_scopes(["repository", name])
    assert caught.value.name == name.strip() or caught.value.name == name
    assert caught.value.name.strip() in str(caught.value)
