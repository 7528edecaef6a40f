"""API tokens and address allow-lists in the policy: an API token does exactly what the
scope table names for its scopes (none implying another), never more than its owner's live
level; a credential with an allow-list does nothing from outside it."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitward.domain.identity import AuthContext, Bound, CredentialKind, UserPrincipal
from gitward.domain.networks import InvalidAllowList, networks_of, parse_allowed_ips
from gitward.domain.permissions import (
    ACTIONS,
    API_SCOPE_FOR,
    API_TOKEN_SCOPES,
    Action,
    ApiScope,
    Level,
    ResourceKind,
    WorkspaceRole,
)
from gitward.domain.policy import (
    DenialCode,
    Denied,
    LiveGrants,
    Target,
    address_refusal,
    authorize,
    scope_message,
)

ALICE = UserPrincipal(1, "alice")
TARGETS = {
    ResourceKind.REPOSITORY: Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=2,
                                    repository_id=3),
    ResourceKind.PROJECT: Target(ResourceKind.PROJECT, workspace_id=1, project_id=2),
    ResourceKind.WORKSPACE: Target(ResourceKind.WORKSPACE, workspace_id=1),
    ResourceKind.ACCOUNT: Target(ResourceKind.ACCOUNT, user_id=1),
    ResourceKind.SITE: Target(ResourceKind.SITE),
}
#: Alice owns the workspace and administers the site: her live level allows everything.
EVERYTHING = LiveGrants(workspace_role=WorkspaceRole.OWNER, is_site_admin=True)


def api_token(scopes: frozenset[ApiScope], **bound: object) -> AuthContext:
    return AuthContext(ALICE, CredentialKind.API_TOKEN,
                       Bound(api_scopes=scopes, **bound),  # type: ignore[arg-type]
                       credential_id=7)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_needs_exactly_its_scope(action: Action) -> None:
    target = TARGETS[ACTIONS[action].resource]
    everything = frozenset(ApiScope)
    allowed = authorize(api_token(everything), action, target, EVERYTHING)
    scope = API_SCOPE_FOR.get(action)
    if scope is None:
        assert isinstance(allowed, Denied) and allowed.code is DenialCode.FORBIDDEN
        assert "API tokens cannot be used" in allowed.reason
        return
    assert allowed
    assert authorize(api_token(frozenset({scope})), action, target, EVERYTHING)
    # Every other scope together does not make up for the missing one.
    without = authorize(api_token(everything - {scope}), action, target, EVERYTHING)
    assert without == Denied(DenialCode.FORBIDDEN, scope_message(scope.value))


def test_the_table_maps_every_scope_and_no_action_twice() -> None:
    assert set(API_TOKEN_SCOPES) == set(ApiScope)
    assert sum(len(a) for a in API_TOKEN_SCOPES.values()) == len(API_SCOPE_FOR)
    assert all(not ACTIONS[a].interactive_only for a in API_SCOPE_FOR)


GRANTS = [
    LiveGrants(workspace_role=role, project_grant=project, repository_grant=repo)
    for role, project, repo in itertools.product(
        [None, WorkspaceRole.MEMBER, WorkspaceRole.OWNER],
        [Level.NONE, Level.READ, Level.WRITE, Level.ADMIN],
        [Level.NONE, Level.READ, Level.WRITE, Level.ADMIN],
    )
]


@given(
    scopes=st.frozensets(st.sampled_from(list(ApiScope))),
    action=st.sampled_from(list(ACTIONS)),
    live=st.sampled_from(GRANTS),
    public=st.booleans(),
)
def test_never_more_than_its_scopes_or_its_owners_live_level(scopes, action, live, public):
    rule = ACTIONS[action]
    target = TARGETS[rule.resource]
    if rule.resource in (ResourceKind.REPOSITORY, ResourceKind.PROJECT):
        target = Target(rule.resource, workspace_id=1, project_id=2,
                        repository_id=3 if rule.resource is ResourceKind.REPOSITORY else None,
                        is_public=public)
    if authorize(api_token(scopes), action, target, live):
        assert API_SCOPE_FOR[action] in scopes
        owner = AuthContext(ALICE, CredentialKind.PASSWORD)
        assert authorize(owner, action, target, live)


NETWORKS = networks_of("198.51.100.0/24 2001:db8::/32")
KINDS_WITH_LISTS = [
    (CredentialKind.PERSONAL_ACCESS_TOKEN, {"pat": {ResourceKind.REPOSITORY: Level.ADMIN}}),
    (CredentialKind.APP_PASSWORD, {"scopes": frozenset()}),
    (CredentialKind.API_TOKEN, {"api_scopes": frozenset(ApiScope)}),
]


@pytest.mark.parametrize(("kind", "bound"), KINDS_WITH_LISTS, ids=lambda k: str(k)[:20])
@pytest.mark.parametrize("address", ["198.51.100.7", "2001:db8::1", "203.0.113.9", None])
def test_outside_the_list_nothing_is_allowed_anywhere(kind, bound, address) -> None:
    ctx = AuthContext(ALICE, kind, Bound(networks=NETWORKS, **bound),
                      credential_id=3).from_address(address)
    inside = address in ("198.51.100.7", "2001:db8::1")
    assert (address_refusal(ctx) is None) is inside
    for action, rule in ACTIONS.items():
        target = TARGETS[rule.resource]
        decision = authorize(ctx, action, target, EVERYTHING)
        if inside:
            assert not (isinstance(decision, Denied) and decision.address)
            continue
        if isinstance(decision, Denied) and not decision.address:
            # Refused already by what the kind may ever do (gate 1): never more than that.
            assert "cannot be used" in decision.reason
            continue
        assert isinstance(decision, Denied) and decision.code is DenialCode.FORBIDDEN
        assert "allow-list" in decision.reason


def test_a_context_without_a_list_is_never_refused_for_its_address() -> None:
    ctx = api_token(frozenset(ApiScope))
    assert address_refusal(ctx) is None and ctx.client_address is None


def test_an_ipv4_mapped_address_is_its_ipv4_address() -> None:
    ctx = api_token(frozenset(ApiScope), networks=NETWORKS).from_address("::ffff:198.51.100.7")
    assert ctx.client_address == ipaddress.ip_address("198.51.100.7")
    assert address_refusal(ctx) is None
    assert api_token(frozenset(), networks=NETWORKS).from_address("[2001:db8::9]").client_address


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, None),
        ([], None),
        (["10.1.2.3/8", "10.0.0.0/8", " 2001:DB8::/32 "], ("10.0.0.0/8", "2001:db8::/32")),
        (["192.0.2.1"], ("192.0.2.1/32",)),
    ],
)
def test_lists_are_normalised(value, parsed) -> None:
    assert parse_allowed_ips(value) == parsed


@pytest.mark.parametrize(
    "value", ["10.0.0.0/8", {"a": 1}, [None], ["10.0.0.0/99"], ["host.example"], ["1.2.3.4"] * 101]
)
def test_bad_lists_name_the_problem(value) -> None:
    with pytest.raises(InvalidAllowList, match="allowed_ips"):
        parse_allowed_ips(value)
