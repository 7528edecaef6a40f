"""Narrowed tokens (`gwnar_`) in process: each restriction honoured on top of the parent's
live bound, on REST and Git; the parent's end (revocation, rotation) ends them; a tampered or
truncated chain is refused; a narrowed token can be narrowed again (restrictions add up); the
revocation API ends one narrowed token alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from gitward.credentials import codec, narrowing
from gitward.runtime import Runtime
from gitward.storage.models import PersonalAccessToken, utcnow
from gitward.web.app import create_app
from tests.asgi_client import AppClient
from tests.integration.conftest import Account, World, basic, bearer

PATS = "/rest/access-tokens/1.0/users/alice"
WIDGET = "/2.0/repositories/acme/widget"
OTHER = "/2.0/repositories/acme/other"
FETCH = "/acme/{}.git/info/refs?service=git-upload-pack"
PUSH = "/acme/{}.git/info/refs?service=git-receive-pack"


@pytest.fixture
def alice(world: World) -> Account:
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.repository(alice, "acme", "other", "PRJ")
    return alice


def cloud_error(r) -> str:
    """The message of a Bitbucket Cloud error."""
    assert r.headers["content-type"].startswith("application/json"), r.text
    message: str = r.json()["error"]["message"]
    return message


def _pat(client: AppClient, alice: Account, **extra: object) -> tuple[str, int]:
    body = {"name": "ci", "permissions": ["REPO_WRITE"], **extra}
    r = client.put(PATS, json=body, headers=alice.auth)
    assert r.status_code == 200, r.text
    return r.json()["token"], int(r.json()["id"])


def narrow(token: str, *repositories: str, read_only: bool = False,
           expires_in: str | None = None, ips: tuple[str, ...] = ()) -> str:
    return narrowing.narrow(token, narrowing.caveat_of(
        list(repositories), read_only=read_only, expires_in=expires_in, allowed_ips=ips
    ))


def test_a_narrowed_token_reaches_only_its_repositories(client, alice):
    parent, _ = _pat(client, alice)
    derived = narrow(parent, "acme/widget")
    assert derived.startswith("gwnar_") and codec.prefix_of(derived) is None
    auth = bearer(derived)
    assert client.get(WIDGET, headers=auth).status_code == 200
    assert client.get(FETCH.format("widget"), headers=auth).status_code == 200
    # The parent reaches the other repository; the narrowed token does not even see it.
    assert client.get(OTHER, headers=bearer(parent)).status_code == 200
    r = client.get(OTHER, headers=auth)
    assert r.status_code == 404, r.text
    assert client.get(FETCH.format("other"), headers=auth).status_code == 404
    # Nor the project or workspace around it.
    assert client.get("/2.0/workspaces/acme/projects/PRJ", headers=auth).status_code == 404
    # Nor the workspace's listing, as for a repository access token (the parent lists it).
    assert client.get("/2.0/repositories/acme", headers=bearer(parent)).status_code == 200
    assert client.get("/2.0/repositories/acme", headers=auth).status_code == 404
    # Site-wide listings never show a repository it does not reach.
    for path in ("/rest/api/1.0/repos", "/2.0/repositories?role=member"):
        by_parent = client.get(path, headers=bearer(parent)).json()["values"]
        assert "other" in {v["slug"] for v in by_parent}
        listed = client.get(path, headers=auth)
        assert listed.status_code == 200, listed.text
        assert "other" not in {v["slug"] for v in listed.json()["values"]}
    # Its writes still stand where the parent's do (not read-only).
    assert client.get(PUSH.format("widget"), headers=auth).status_code == 200


def test_read_only_refuses_every_write(client, alice):
    parent, _ = _pat(client, alice)
    derived = bearer(narrow(parent, read_only=True))
    assert client.get(PUSH.format("widget"), headers=bearer(parent)).status_code == 200
    assert client.get(FETCH.format("widget"), headers=derived).status_code == 200
    assert client.get(FETCH.format("other"), headers=derived).status_code == 200
    r = client.get(PUSH.format("widget"), headers=derived)
    assert r.status_code == 403 and "read-only" in r.text
    r = client.post(f"{WIDGET}/refs/branches", headers=derived,
                    json={"name": "x", "target": {"hash": "main"}})
    assert r.status_code == 403 and "read-only" in cloud_error(r)


def test_expiry_is_the_earlier_of_the_parent_and_the_narrowing(client, runtime, alice):
    parent, token_id = _pat(client, alice, expiryDays=1)
    soon = narrow(parent, expires_in="1h")
    late = narrow(parent, expires_in="30d")
    with runtime.unit_of_work() as store:
        row = store.credentials.pat_by_id(token_id)
        assert row is not None and row.expires_on is not None
        parent_expiry = row.expires_on
    tokens = runtime.narrowed_tokens
    try:
        assert client.get(WIDGET, headers=bearer(soon)).status_code == 200
        tokens.clock = lambda: utcnow() + timedelta(minutes=61)
        r = client.get(WIDGET, headers=bearer(soon))
        assert r.status_code == 401 and "expired" in cloud_error(r)
        assert client.get(WIDGET, headers=bearer(late)).status_code == 200
        # Never later than the parent's own expiry.
        tokens.clock = lambda: parent_expiry
        assert client.get(WIDGET, headers=bearer(late)).status_code == 401
        tokens.clock = lambda: parent_expiry - timedelta(seconds=1)
        assert client.get(WIDGET, headers=bearer(late)).status_code == 200
    finally:
        tokens.clock = utcnow


@pytest.fixture
def peer(runtime: Runtime) -> Iterator[Callable[[str], AppClient]]:
    opened: list[AppClient] = []

    def at(address: str) -> AppClient:
        client = AppClient(create_app(runtime), client=(address, 40000),
                            raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield at
    for client in opened:
        client.__exit__(None, None, None)


def test_the_address_list_is_intersected_with_the_parents(client, alice, peer):
    parent, _ = _pat(client, alice, allowedIps=["198.51.100.0/24"])
    inner = bearer(narrow(parent, ips=("198.51.100.0/28",)))
    wider = bearer(narrow(parent, ips=("10.0.0.0/8", "198.51.0.0/16")))
    assert peer("198.51.100.7").get(WIDGET, headers=inner).status_code == 200
    # Inside the parent's list, outside the narrowed one.
    r = peer("198.51.100.200").get(WIDGET, headers=inner)
    assert r.status_code == 403 and "allow-list" in cloud_error(r)
    assert peer("198.51.100.200").get(WIDGET, headers=bearer(parent)).status_code == 200
    # A narrowing never widens the parent's list: 10.0.0.0/8 adds nothing.
    assert peer("10.1.2.3").get(WIDGET, headers=wider).status_code == 403
    assert peer("198.51.100.200").get(WIDGET, headers=wider).status_code == 200
    assert peer("198.51.101.1").get(WIDGET, headers=wider).status_code == 403


def test_the_parents_end_ends_every_narrowed_token(client, runtime, alice):
    parent, token_id = _pat(client, alice)
    derived = narrow(parent, "acme/widget")
    again = narrow(derived, read_only=True)
    assert client.get(WIDGET, headers=bearer(again)).status_code == 200
    # Rotation: a new secret, a new narrowing key; what was narrowed from the old one dies.
    r = client.post(f"{PATS}/{token_id}/rotate", headers=alice.auth)
    assert r.status_code == 200, r.text
    rotated = r.json()["token"]
    for dead in (derived, again):
        r = client.get(WIDGET, headers=bearer(dead))
        assert r.status_code == 401 and "revoked or unknown" in cloud_error(r)
    fresh = narrow(rotated, "acme/widget")
    assert client.get(WIDGET, headers=bearer(fresh)).status_code == 200
    assert client.delete(f"{PATS}/{token_id}", headers=alice.auth).status_code == 204
    assert client.get(WIDGET, headers=bearer(fresh)).status_code == 401
    # The owner's loss of access ends them too (the parent's live bound).


def test_the_owners_live_levels_still_bound_it(client, world, alice):
    bob = world.user("bob")
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    r = client.put("/rest/access-tokens/1.0/users/bob", headers=bob.auth,
                   json={"name": "ci", "permissions": ["REPO_WRITE"]})
    derived = bearer(narrow(r.json()["token"], "acme/widget", "acme/other"))
    assert client.get(WIDGET, headers=derived).status_code == 200
    assert client.get(OTHER, headers=derived).status_code == 404  # bob cannot see it
    r = client.delete(f"{WIDGET}/permissions-config/users/bob", headers=alice.auth)
    assert r.status_code == 204, r.text
    assert client.get(WIDGET, headers=derived).status_code == 404


def _reencoded(token: str, change: Callable[[narrowing.Narrowed], narrowing.Narrowed]) -> str:
    return narrowing._encode(change(narrowing.parse(token)))


def test_a_tampered_or_truncated_chain_is_refused(client, runtime, alice):
    parent, _ = _pat(client, alice)
    derived = narrow(parent, "acme/widget", read_only=True)
    twice = narrow(derived, expires_in="1h")

    def widened(n: narrowing.Narrowed) -> narrowing.Narrowed:
        caveat = narrowing.Caveat(repositories=("acme/widget", "acme/other"))
        block = n.blocks[0]
        forged = narrowing.Block(caveat, caveat.encode(), block.public_key, block.signature)
        return narrowing.Narrowed(n.parent_prefix, n.parent_key, (forged,), n.proof)

    def dropped_last(n: narrowing.Narrowed) -> narrowing.Narrowed:
        return narrowing.Narrowed(n.parent_prefix, n.parent_key, n.blocks[:1], n.proof)

    def other_parent(n: narrowing.Narrowed) -> narrowing.Narrowed:
        other, _ = _pat(client, alice)
        key = bytes.fromhex(narrowing.narrowing_key(other))
        return narrowing.Narrowed(n.parent_prefix, key, n.blocks, n.proof)

    for forged in (_reencoded(derived, widened), _reencoded(twice, dropped_last),
                   _reencoded(derived, other_parent)):
        assert narrowing.is_well_formed(forged)  # the checksum is no protection
        r = client.get(OTHER, headers=bearer(forged))
        assert r.status_code == 401 and "Invalid narrowed token" in cloud_error(r)
    with runtime.unit_of_work() as store:
        failed = [e.target for e in store.audit.events() if e.action == "auth.failed"]
    assert failed.count("token:narrowed:forged") == 3
    # A typo (the checksum) is refused before anything is looked up.
    typo = derived[:-1] + ("A" if derived[-1] != "A" else "B")
    r = client.get(WIDGET, headers=bearer(typo))
    assert r.status_code == 401 and cloud_error(r) == "Invalid token"
    assert client.get(WIDGET, headers=bearer(derived)).status_code == 200


def test_narrowing_again_adds_up(client, alice):
    parent, _ = _pat(client, alice)
    both = narrow(parent, "acme/widget", "acme/other")
    one = narrow(both, "acme/widget", read_only=True)
    assert client.get(OTHER, headers=bearer(both)).status_code == 200
    assert client.get(PUSH.format("widget"), headers=bearer(both)).status_code == 200
    assert client.get(WIDGET, headers=bearer(one)).status_code == 200
    assert client.get(OTHER, headers=bearer(one)).status_code == 404
    assert client.get(PUSH.format("widget"), headers=bearer(one)).status_code == 403
    # Naming a repository the first narrowing left out reaches nothing: the intersection.
    outside = narrow(narrow(parent, "acme/widget"), "acme/other")
    assert client.get(OTHER, headers=bearer(outside)).status_code == 404
    assert client.get(WIDGET, headers=bearer(outside)).status_code == 404
    deepest = both
    for _ in range(narrowing.MAX_BLOCKS - 1):
        deepest = narrow(deepest, read_only=True)
    assert client.get(WIDGET, headers=bearer(deepest)).status_code == 200
    with pytest.raises(narrowing.NarrowingError, match="at most 8 times"):
        narrow(deepest, read_only=True)


def test_a_narrowed_token_never_acts_on_a_credential(client, alice):
    parent, token_id = _pat(client, alice)
    derived = bearer(narrow(parent, "acme/widget"))
    # The parent may rotate itself; a narrowed token rotating it would get the whole secret.
    r = client.post(f"{PATS}/{token_id}/rotate", headers=derived)
    assert r.status_code == 403 and "narrowed token" in r.text
    assert client.get(WIDGET, headers=bearer(parent)).status_code == 200


def test_presented_as_its_parent_is(client, world, alice):
    parent, token_id = _pat(client, alice)
    derived = narrow(parent, "acme/widget")
    assert "lastAuthenticated" not in client.get(f"{PATS}/{token_id}", headers=alice.auth).json()
    assert client.get(WIDGET, headers=basic("alice", derived)).status_code == 200
    # Its use is its parent's.
    assert "lastAuthenticated" in client.get(f"{PATS}/{token_id}", headers=alice.auth).json()
    assert client.get(WIDGET, headers=basic("x-token-auth", derived)).status_code == 200
    world.user("bob")
    r = client.get(WIDGET, headers=basic("bob", derived))
    assert r.status_code == 401 and "another user" in cloud_error(r)


def test_a_resource_token_narrowed_to_one_of_its_repositories(client, alice):
    r = client.post("/2.0/workspaces/acme/projects/PRJ/access-tokens", headers=alice.auth,
                    json={"name": "ci", "scopes": ["repository:write"]})
    assert r.status_code == 201, r.text
    parent = r.json()["token"]
    derived = bearer(narrow(parent, "acme/other", read_only=True))
    assert client.get(OTHER, headers=derived).status_code == 200
    assert client.get(WIDGET, headers=derived).status_code == 404
    assert client.get(PUSH.format("other"), headers=bearer(parent)).status_code == 200
    assert client.get(PUSH.format("other"), headers=derived).status_code == 403
    r = client.get("/2.0/user", headers=derived)
    assert r.status_code == 200 and r.json()["kind"] == "project_access_token"
    # Presented as a resource token is: not with a person's username.
    assert client.get(OTHER, headers=basic("alice", narrow(parent, read_only=True))
                      ).status_code == 401


def test_revoking_a_narrowed_token_ends_it_and_its_own_narrowings_only(client, alice):
    parent, _ = _pat(client, alice)
    leaked = narrow(parent, "acme/widget")
    child = narrow(leaked, read_only=True)
    sibling = narrow(parent, "acme/widget")
    r = client.post("/rest/revocation/1.0/tokens", json={"tokens": [leaked]})
    assert r.status_code == 200, r.text
    for dead in (leaked, child):
        r = client.get(WIDGET, headers=bearer(dead))
        assert r.status_code == 401 and "revoked" in cloud_error(r)
    # Anyone holding a narrowed token could otherwise end its far stronger parent.
    assert client.get(WIDGET, headers=bearer(parent)).status_code == 200
    assert client.get(WIDGET, headers=bearer(sibling)).status_code == 200
    # Revoking it again, or a child of it, changes nothing and says nothing.
    assert client.post("/rest/revocation/1.0/tokens", json={"tokens": [leaked, child]}
                       ).status_code == 200


def test_a_token_made_before_narrowing_cannot_be_narrowed(client, runtime, alice):
    parent, token_id = _pat(client, alice)
    with runtime.unit_of_work() as store:
        store.open().execute(
            update(PersonalAccessToken).where(PersonalAccessToken.id == token_id)
            .values(narrowing_key=None)
        )
        store.credentials.changed()
    r = client.get(WIDGET, headers=bearer(narrow(parent, "acme/widget")))
    assert r.status_code == 401 and "revoked or unknown" in cloud_error(r)
    assert client.get(WIDGET, headers=bearer(parent)).status_code == 200


def test_the_server_keeps_only_a_public_key(client, runtime, alice):
    parent, token_id = _pat(client, alice)
    with runtime.unit_of_work() as store:
        row = store.credentials.pat_by_id(token_id)
        assert row is not None
        assert row.narrowing_key == narrowing.narrowing_key(parent)
        assert parent not in str(vars(row))
        assert narrowing.narrowing_seed(parent).hex() not in str(vars(row))
