"""The credential-kind table drives the policy: every kind has a row, and the policy's
behaviour for a kind follows from its row alone (a new row, for a kind the policy has never
heard of, is enough)."""

from __future__ import annotations

import ast
import inspect
import itertools

import pytest

from gitward.credentials.registry import AuthenticationFailed, Presented, presentation_check
from gitward.domain import policy
from gitward.domain.identity import (
    CREDENTIAL_KINDS,
    TOKEN_USERNAME,
    AuthContext,
    Bound,
    BoundBy,
    CredentialKind,
    KindFacts,
    Presentation,
    UserPrincipal,
)
from gitward.domain.permissions import ACTIONS, Action, Level, ResourceKind, Scope
from gitward.domain.policy import Allowed, DenialCode, Denied, LiveGrants, Target, authorize

ALICE = UserPrincipal(1, "alice")
OWN_ACCOUNT = Target(ResourceKind.ACCOUNT, user_id=1)
REPO = Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=10, repository_id=100)
WRITER = LiveGrants(repository_grant=Level.WRITE)


def test_every_kind_has_a_row() -> None:
    assert set(CREDENTIAL_KINDS) == set(CredentialKind)
    for kind, facts in CREDENTIAL_KINDS.items():
        assert facts.name, kind
        assert facts.presented, kind
        assert kind.facts is facts
        assert kind.interactive is facts.interactive


def test_only_password_and_session_are_interactive() -> None:
    interactive = {kind for kind, facts in CREDENTIAL_KINDS.items() if facts.interactive}
    assert interactive == {CredentialKind.PASSWORD, CredentialKind.SESSION}


def test_policy_names_no_credential_kind() -> None:
    """No `CredentialKind.X` anywhere in the policy's code: it reads the table."""
    tree = ast.parse(inspect.getsource(policy))
    named = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "CredentialKind"
    ]
    assert named == []


class NewKind(str):
    """A kind the policy has never heard of (as the web session kind once was)."""


NEW = NewKind("new_kind")


def _ctx(bound: Bound = Bound()) -> AuthContext:
    return AuthContext(ALICE, NEW, bound, credential_id=9)  # type: ignore[arg-type]


def _with_row(monkeypatch: pytest.MonkeyPatch, facts: KindFacts) -> None:
    monkeypatch.setitem(CREDENTIAL_KINDS, NEW, facts)  # type: ignore[arg-type]


def test_a_new_interactive_kind_acts_as_its_user(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_row(monkeypatch, KindFacts("Fresh logins", BoundBy.NOTHING, True,
                                     frozenset({Presentation.COOKIE})))
    assert authorize(_ctx(), Action.CREDENTIAL_CREATE, OWN_ACCOUNT, LiveGrants()) == Allowed()
    assert authorize(_ctx(), Action.REPO_WRITE, REPO, WRITER) == Allowed()


def test_a_new_scoped_kind_is_held_to_its_scopes(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_row(monkeypatch, KindFacts("Fresh tokens", BoundBy.SCOPES, False,
                                     frozenset({Presentation.BEARER})))
    denied = authorize(_ctx(), Action.CREDENTIAL_CREATE, OWN_ACCOUNT, LiveGrants())
    assert isinstance(denied, Denied) and denied.code is DenialCode.FORBIDDEN
    assert denied.reason.startswith("Fresh tokens cannot be used to create credentials")
    # Rotating itself names no scope: out of a scoped kind's reach (a PAT-like kind may).
    itself = Target(ResourceKind.ACCOUNT, user_id=1, credential_kind=NEW,  # type: ignore[arg-type]
                    credential_id=9)
    rotate = authorize(_ctx(Bound(scopes=frozenset(Scope))), Action.CREDENTIAL_ROTATE, itself,
                       LiveGrants())
    assert isinstance(rotate, Denied)
    assert rotate.reason == "Fresh tokens cannot be used to rotate credentials"
    scoped = _ctx(Bound(scopes=frozenset({Scope.REPOSITORY, Scope.REPOSITORY_WRITE})))
    assert authorize(scoped, Action.REPO_WRITE, REPO, WRITER) == Allowed()
    unscoped_bound = _ctx(Bound(scopes=frozenset({Scope.REPOSITORY})))
    assert isinstance(authorize(unscoped_bound, Action.REPO_WRITE, REPO, WRITER), Denied)


def test_a_new_pat_like_kind_is_held_to_pat_permissions(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_row(monkeypatch, KindFacts("Fresh PATs", BoundBy.PAT_PERMISSIONS, False,
                                     frozenset({Presentation.BEARER})))
    without_pat = [a for a, rule in ACTIONS.items() if rule.pat is None
                   and rule.resource is ResourceKind.REPOSITORY and not rule.interactive_only]
    for action in without_pat:
        decision = authorize(_ctx(Bound(pat={})), action, REPO,
                             LiveGrants(repository_grant=Level.ADMIN))
        assert isinstance(decision, Denied)
        assert decision.reason.startswith("Fresh PATs cannot be used")
    writer = _ctx(Bound(pat={ResourceKind.REPOSITORY: Level.WRITE}))
    assert authorize(writer, Action.REPO_WRITE, REPO, WRITER) == Allowed()
    itself = Target(ResourceKind.ACCOUNT, user_id=1, credential_kind=NEW,  # type: ignore[arg-type]
                    credential_id=9)
    assert authorize(writer, Action.CREDENTIAL_ROTATE, itself, LiveGrants()) == Allowed()


def test_changing_a_row_changes_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same kind, with interactive flipped in its row, loses the right to make credentials."""
    password = AuthContext(ALICE, CredentialKind.PASSWORD)
    assert authorize(password, Action.CREDENTIAL_CREATE, OWN_ACCOUNT, LiveGrants()) == Allowed()
    row = CREDENTIAL_KINDS[CredentialKind.PASSWORD]
    monkeypatch.setitem(CREDENTIAL_KINDS, CredentialKind.PASSWORD,
                        KindFacts(row.name, row.bound_by, False, row.presented))
    denied = authorize(password, Action.CREDENTIAL_CREATE, OWN_ACCOUNT, LiveGrants())
    assert isinstance(denied, Denied)
    assert "Account passwords cannot be used to create credentials" in denied.reason


_WAYS: dict[Presentation, Presented] = {
    Presentation.BEARER: Presented("bearer", "s"),
    Presentation.BASIC_TOKEN_USERNAME: Presented("basic", "s", TOKEN_USERNAME),
    Presentation.BASIC_OWN_USERNAME: Presented("basic", "s", "alice"),
}


@pytest.mark.parametrize(
    ("kind", "way"),
    list(itertools.product(
        [k for k in CredentialKind if k not in (CredentialKind.ANONYMOUS, CredentialKind.SESSION)],
        list(_WAYS),
    )),
)
def test_presentation_follows_the_table(kind: CredentialKind, way: Presentation) -> None:
    facts = CREDENTIAL_KINDS[kind]
    if way in facts.presented:
        presentation_check(kind)(_WAYS[way])
    else:
        with pytest.raises(AuthenticationFailed) as refused:
            presentation_check(kind)(_WAYS[way])
        assert refused.value.message == facts.presentation_hint


def test_a_resource_comes_only_from_resolve() -> None:
    """services.resource_tokens.Resource proves the access check: it cannot be made directly."""
    from gitward.services.resource_tokens import Resource

    with pytest.raises(TypeError, match=r"only from resource_tokens\.resolve"):
        Resource(ResourceKind.REPOSITORY, "repository:w/r", 1, None, 100, object())
    with pytest.raises(TypeError):
        Resource(ResourceKind.WORKSPACE, "workspace:w", 1, None, None)  # type: ignore[call-arg]
