"""A presented secret reaches the database only when it is well formed, and a cached look-up
answers only while nothing bearing on it has changed (credentials/stored.py `look_up`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from gitward.credentials import codec, narrowing
from gitward.credentials.registry import AuthenticationFailed, Presented
from gitward.runtime import Runtime
from tests.integration.conftest import World, bearer

#: Every prefix the registry serves, with how it may be presented.
PRESENTED_AS = {
    "gwpat_": ("bearer", None),
    "gwapp_": ("basic", "alice"),
    "gwapi_": ("basic", "alice"),
    "gwrep_": ("bearer", None),
    "gwprj_": ("bearer", None),
    "gwwsp_": ("bearer", None),
    "gwoat_": ("bearer", None),
    "gwses_": ("cookie", None),
    "gwnar_": ("bearer", None),
}
#: The kinds of the common format (narrowed tokens are longer: tested on their own below).
COMMON = sorted(set(PRESENTED_AS) - {narrowing.PREFIX})


@pytest.fixture
def statements(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    yield seen
    event.remove(runtime.engine, "before_cursor_execute", record)


def _authenticate(runtime: Runtime, secret: str, prefix: str) -> AuthenticationFailed:
    scheme, username = PRESENTED_AS[prefix]
    presented = Presented(scheme, secret, username, "127.0.0.1")  # type: ignore[arg-type]
    with runtime.unit_of_work(write=False) as store:
        with pytest.raises(AuthenticationFailed) as failed:
            runtime.credentials.authenticate(store, presented)
    return failed.value


def test_every_prefix_is_covered(runtime: Runtime) -> None:
    assert runtime.credentials.prefixes == frozenset(PRESENTED_AS)


@pytest.mark.parametrize("prefix", COMMON)
def test_a_mistyped_secret_never_reaches_the_database(
    runtime: Runtime, statements: list[str], prefix: str
) -> None:
    secret = codec.generate(prefix)
    position = len(prefix) + 5
    typo = secret[:position] + ("B" if secret[position] == "A" else "A") + secret[position + 1:]
    failure = _authenticate(runtime, typo, prefix)
    assert failure.audit_subject == "malformed-token"
    assert failure.message == "Invalid token"
    assert not [s for s in statements if "token_hash" in s]
    # The same secret unmistyped is looked up (so the check above can fail).
    _authenticate(runtime, secret, prefix)
    assert [s for s in statements if "token_hash" in s]


def test_a_mistyped_narrowed_token_never_reaches_the_database(
    runtime: Runtime, statements: list[str]
) -> None:
    secret = narrowing.narrow(codec.generate("gwpat_"), narrowing.Caveat(read_only=True))
    position = len(narrowing.PREFIX) + 5
    typo = secret[:position] + ("B" if secret[position] == "A" else "A") + secret[position + 1:]
    failure = _authenticate(runtime, typo, narrowing.PREFIX)
    assert failure.audit_subject == "malformed-token"
    assert failure.message == "Invalid token"
    assert not [s for s in statements if "narrowing_key" in s]
    # A well-formed one is looked up by its parent's narrowing key (unknown here).
    assert "revoked or unknown" in _authenticate(runtime, secret, narrowing.PREFIX).message
    assert [s for s in statements if "narrowing_key" in s]


def test_a_cached_token_follows_its_owner_and_grants(client, world: World) -> None:
    """The cached answer of a token (its context, down to the owner's standing) is dropped by
    any change bearing on it: deactivation, reactivation, and grants, request by request."""
    alice = world.user("alice")
    bob = world.user("bob")
    root = world.user("root", site_admin=True)
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    r = client.put("/rest/access-tokens/1.0/users/bob", headers=bob.auth,
                   json={"name": "ci", "permissions": ["REPO_WRITE"]})
    h = bearer(r.json()["token"])
    repo = "/2.0/repositories/acme/widget"
    for _ in range(3):  # answered from the cache after the first
        assert client.get(repo, headers=h).status_code == 200
    client.put("/rest/api/1.0/admin/users", json={"name": "bob", "active": False},
               headers=root.auth)
    assert client.get(repo, headers=h).status_code == 401
    assert client.get(repo, headers=h).status_code == 401
    client.put("/rest/api/1.0/admin/users", json={"name": "bob", "active": True},
               headers=root.auth)
    assert client.get(repo, headers=h).status_code == 200
    client.delete(f"{repo}/permissions-config/users/bob", headers=alice.auth)
    assert client.get(repo, headers=h).status_code == 404


def test_a_narrowed_token_is_verified_once_per_generation(
    client, world: World, runtime: Runtime, statements: list[str]
) -> None:
    """Its chain is checked and its parent read once; later requests are served from the
    cache until something bearing on it changes (here: a repository it names appears)."""
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    r = client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth,
                   json={"name": "ci", "permissions": ["REPO_READ"]})
    derived = narrowing.narrow(r.json()["token"], narrowing.caveat_of(["acme/widget",
                                                                       "acme/later"]))
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(derived)).status_code == 200
    assert client.get("/2.0/repositories/acme/later", headers=bearer(derived)).status_code == 404
    statements.clear()
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(derived)).status_code == 200
    assert not [s for s in statements if "narrowing_key" in s]
    world.repository(alice, "acme", "later", "PRJ")
    assert client.get("/2.0/repositories/acme/later", headers=bearer(derived)).status_code == 200
    assert [s for s in statements if "narrowing_key" in s]
