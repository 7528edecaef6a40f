"""Narrowed tokens, pure: the format round-trips and refuses any change; whatever the chain
of narrowings, the policy never allows a narrowed token what its parent is refused, nor what
a shorter chain is refused, and every restriction it allows through is honoured."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitward.credentials import codec, narrowing
from gitward.credentials.personal import PatPermissions
from gitward.domain.identity import (
    AuthContext,
    Bound,
    CredentialKind,
    Reach,
    TokenPrincipal,
    UserPrincipal,
)
from gitward.domain.networks import networks_of
from gitward.domain.permissions import (
    ACTIONS,
    READ_ACTIONS,
    Action,
    Level,
    ResourceKind,
    Scope,
    WorkspaceRole,
    implied_scopes,
)
from gitward.domain.policy import LiveGrants, Target, authorize

#: The repositories that exist: name -> (id, project id). acme/gone does not exist.
REPOSITORIES = {"acme/app": (1, 10), "acme/lib": (2, 10), "acme/docs": (3, 11)}
NAMES = [*REPOSITORIES, "acme/gone"]
NETWORKS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.0.2.0/24", "2001:db8::/32",
            "2001:db8:1::/48"]
ADDRESSES = ["10.1.2.3", "10.9.9.9", "192.0.2.1", "198.51.100.1", "2001:db8:1::5", None]
ALICE = 7


def resolve(name: str) -> int | None:
    found = REPOSITORIES.get(name)
    return found[0] if found else None


caveats = st.builds(
    narrowing.Caveat,
    repositories=st.none() | st.lists(st.sampled_from(NAMES), min_size=1, max_size=3,
                                      unique=True).map(tuple),
    read_only=st.booleans(),
    allowed_ips=st.none() | st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=3,
                                     unique=True).map(tuple),
).filter(lambda c: not c.is_empty())

pat_parents = st.builds(
    lambda repo, project, ips: AuthContext(
        UserPrincipal(ALICE, "alice"), CredentialKind.PERSONAL_ACCESS_TOKEN,
        Bound(pat=PatPermissions(repo, project).bound().pat, networks=networks_of(ips)),
        credential_id=5,
    ),
    st.sampled_from([Level.READ, Level.WRITE, Level.ADMIN]),
    st.sampled_from([None, Level.READ]),
    st.none() | st.sampled_from(["10.0.0.0/8", "10.1.2.0/24 2001:db8::/32", "192.0.2.0/24"]),
)
resource_parents = st.builds(
    lambda scopes, reach: AuthContext(
        TokenPrincipal(9, "ci", CredentialKind.PROJECT_ACCESS_TOKEN),
        CredentialKind.PROJECT_ACCESS_TOKEN,
        Bound(scopes=implied_scopes(frozenset(scopes)), reach=reach),
        credential_id=9,
    ),
    st.sets(st.sampled_from([Scope.REPOSITORY, Scope.REPOSITORY_WRITE, Scope.PULLREQUEST_WRITE,
                             Scope.REPOSITORY_ADMIN, Scope.PROJECT]), min_size=1),
    st.sampled_from([Reach(1, 10), Reach(1, 11), Reach(1)]),
)


#: Targets of each kind of resource.
TARGETS: dict[ResourceKind, st.SearchStrategy[Target]] = {
    ResourceKind.REPOSITORY: st.sampled_from([*sorted(REPOSITORIES.values()), (4, 10)]).flatmap(
        lambda ids: st.builds(
            Target, st.just(ResourceKind.REPOSITORY), workspace_id=st.just(1),
            project_id=st.just(ids[1]), repository_id=st.just(ids[0]), is_public=st.booleans(),
        )
    ),
    ResourceKind.PROJECT: st.builds(
        Target, st.just(ResourceKind.PROJECT), workspace_id=st.just(1),
        project_id=st.sampled_from([10, 11]), is_public=st.booleans(),
    ),
    ResourceKind.WORKSPACE: st.just(Target(ResourceKind.WORKSPACE, workspace_id=1)),
    ResourceKind.ACCOUNT: st.builds(
        Target, st.just(ResourceKind.ACCOUNT), user_id=st.just(ALICE),
        credential_kind=st.just(CredentialKind.PERSONAL_ACCESS_TOKEN),
        credential_id=st.sampled_from([None, 5]),
    ),
    ResourceKind.SITE: st.just(Target(ResourceKind.SITE)),
}


live_grants = st.builds(
    LiveGrants,
    workspace_role=st.sampled_from([None, WorkspaceRole.MEMBER, WorkspaceRole.OWNER]),
    project_grant=st.sampled_from([Level.NONE, Level.READ, Level.WRITE, Level.ADMIN]),
    repository_grant=st.sampled_from([Level.NONE, Level.READ, Level.WRITE, Level.ADMIN]),
    is_site_admin=st.booleans(),
)


def at(ctx: AuthContext, address: str | None) -> AuthContext:
    return ctx if ctx.bound.networks is None else ctx.from_address(address)


def derived(parent: AuthContext, chain: list[narrowing.Caveat]) -> AuthContext:
    """The context the server answers for `parent` narrowed by `chain`."""
    bound = narrowing.bound_of(parent.bound, narrowing.combined(chain), resolve)
    return AuthContext(parent.principal, parent.credential, bound,
                       credential_id=parent.credential_id)


@settings(max_examples=150, deadline=None)
@given(
    parent=st.one_of(pat_parents, resource_parents),
    chain=st.lists(caveats, min_size=1, max_size=4),
    live=live_grants,
    address=st.sampled_from(ADDRESSES),
    data=st.data(),
)
def test_a_narrowed_token_never_exceeds_its_parent_or_a_shorter_chain(
    parent, chain, live, address, data
):
    targets = {kind: data.draw(strategy) for kind, strategy in TARGETS.items()}
    ctx = at(derived(parent, chain), address)
    shorter = [at(derived(parent, chain[:length]), address) for length in range(1, len(chain))]
    for action, rule in ACTIONS.items():
        target = targets[rule.resource]
        if not authorize(ctx, action, target, live):
            continue
        # Its parent, and every shorter chain, allow it too.
        assert authorize(at(parent, address), action, target, live), (action, target)
        for before in shorter:
            assert authorize(before, action, target, live), (action, target)
        assert_restrictions_hold(chain, action, target, address)


def assert_restrictions_hold(
    chain: list[narrowing.Caveat], action: Action, target: Target, address: str | None
) -> None:
    """Every restriction of every narrowing holds for an action allowed."""
    for caveat in chain:
        if caveat.read_only:
            assert action in READ_ACTIONS, action
        if caveat.repositories is not None:
            assert target.kind in (ResourceKind.REPOSITORY, ResourceKind.ACCOUNT), action
            if target.kind is ResourceKind.REPOSITORY:
                ids = {resolve(name) for name in caveat.repositories}
                assert target.repository_id in ids
        if caveat.allowed_ips is not None:
            assert address is not None
            assert any(ipaddress.ip_address(address) in ipaddress.ip_network(n)
                       for n in caveat.allowed_ips), (address, caveat.allowed_ips)
    assert target.credential_id is None and not ACTIONS[action].self_only, action


def test_it_still_does_what_its_restrictions_leave():
    parent = AuthContext(UserPrincipal(ALICE, "alice"), CredentialKind.PERSONAL_ACCESS_TOKEN,
                         PatPermissions(Level.WRITE).bound(), credential_id=5)
    app = Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=10, repository_id=1)
    lib = Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=10, repository_id=2)
    live = LiveGrants(repository_grant=Level.WRITE)
    narrowed = derived(parent, [narrowing.Caveat(repositories=("acme/app",))])
    assert authorize(narrowed, Action.REPO_WRITE, app, live)
    assert not authorize(narrowed, Action.REPO_READ, lib, live)
    read_only = derived(parent, [narrowing.Caveat(read_only=True)])
    assert authorize(read_only, Action.REPO_READ, lib, live)
    assert not authorize(read_only, Action.REPO_WRITE, lib, live)
    assert not authorize(read_only, Action.BUILD_STATUS_WRITE, lib, live)


# -- the format -------------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@settings(max_examples=50, deadline=None)
@given(chain=st.lists(caveats, min_size=1, max_size=4), prefix=st.sampled_from(
    sorted(narrowing.PARENT_CODES)))
def test_the_chain_round_trips_and_adds_up(chain, prefix):
    parent = codec.generate(prefix)
    token = parent
    for caveat in chain:
        token = narrowing.narrow(token, caveat)
        assert narrowing.is_well_formed(token) and len(token) <= narrowing.MAX_LENGTH
    read = narrowing.parse(token)
    assert read.verify()
    assert read.parent_prefix == prefix
    assert read.parent_key_hex == narrowing.narrowing_key(parent)
    assert [b.caveat for b in read.blocks] == chain
    assert read.restrictions() == narrowing.combined(chain)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_change_to_a_narrowed_token_is_refused(data):
    token = narrowing.narrow(narrowing.narrow(codec.generate("gwpat_"), narrowing.Caveat(
        repositories=("acme/app",))), narrowing.Caveat(read_only=True))
    raw = bytearray(narrowing._unbase62(token[6:-6]))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= 1 << data.draw(st.integers(0, 7))
    body = "gwnar_" + narrowing._base62(bytes(raw))
    changed = body + codec.checksum(body)  # a forger computes the checksum too
    try:
        read = narrowing.parse(changed)
    except narrowing.NarrowingError:
        return
    assert not read.verify()


def test_a_narrowed_token_without_its_proof_cannot_be_narrowed_by_a_stranger():
    """The proof is the last block's private key: with another key, the next block does not
    verify."""
    token = narrowing.narrow(codec.generate("gwpat_"), narrowing.Caveat(read_only=True))
    read = narrowing.parse(token)
    stranger = narrowing.Narrowed(read.parent_prefix, read.parent_key, read.blocks, b"\1" * 32)
    assert not narrowing.parse(narrowing._encode(stranger)).verify()


def test_restrictions_combine_as_an_intersection():
    later = NOW + timedelta(hours=2)
    combined = narrowing.combined([
        narrowing.Caveat(repositories=("acme/app", "acme/lib"), expires=later),
        narrowing.Caveat(repositories=("acme/lib", "acme/docs"), allowed_ips=("10.0.0.0/8",)),
        narrowing.Caveat(read_only=True, expires=NOW + timedelta(hours=1)),
    ])
    assert combined.repositories == {"acme/lib"}
    assert combined.read_only
    assert combined.expires == NOW + timedelta(hours=1)
    assert combined.allow_lists == (("10.0.0.0/8",),)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "nothing to narrow"),
    ({"repositories": ["acme"]}, "WORKSPACE/SLUG"),
    ({"repositories": ["acme/a b"]}, "WORKSPACE/SLUG"),
    ({"expires_in": "soon"}, "number and a unit"),
    ({"expires_in": "0h"}, "number and a unit"),
    ({"expires_in": "99999d"}, "at most 3660 days"),
    ({"allowed_ips": ["10.0.0.300/8"]}, "CIDR"),
])
def test_bad_restrictions_are_clear_errors(kwargs, message):
    with pytest.raises(narrowing.NarrowingError, match=message):
        narrowing.caveat_of(**kwargs)


def test_durations_and_names_are_normalised():
    caveat = narrowing.caveat_of(["Acme/App", "acme/app"], expires_in="30m",
                                 allowed_ips=["10.1.2.3/8", "10.0.0.0/8"], now=NOW)
    assert caveat.repositories == ("acme/app",)
    assert caveat.expires == NOW + timedelta(minutes=30)
    assert caveat.allowed_ips == ("10.0.0.0/8",)
    for text, seconds in (("90s", 90), ("1h", 3600), ("7d", 7 * 86400), ("2w", 14 * 86400)):
        assert narrowing.parse_duration(text) == timedelta(seconds=seconds)


def test_only_narrowable_tokens_are_narrowed():
    caveat = narrowing.Caveat(read_only=True)
    for prefix in ("gwapp_", "gwapi_", "gwoat_", "gwses_"):
        with pytest.raises(narrowing.NarrowingError, match="can be narrowed"):
            narrowing.narrow(codec.generate(prefix), caveat)
    typo = codec.generate("gwpat_")[:-1] + "!"
    with pytest.raises(narrowing.NarrowingError, match="typo"):
        narrowing.narrow(typo, caveat)
    with pytest.raises(narrowing.NarrowingError, match="not a narrowed token"):
        narrowing.narrow("gwnar_" + "A" * 200, caveat)
