"""A presented secret reaches the database only when it is well formed, and a cached look-up
answers only while nothing bearing on it has changed (credentials/stored.py `look_up`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from gitward.credentials import codec
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
}


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


@pytest.mark.parametrize("prefix", sorted(PRESENTED_AS))
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
