"""The verified-password cache (credentials/password.VerifiedPasswords): the requests of one
clone verify the account password once, and nothing the cache remembers outlives a password
change, a deactivation, the credential generation, its lifetime or a guessing lock."""

from __future__ import annotations

import threading

import pytest

from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.services import passwords
from gitward.services.caller import Caller
from tests.integration.conftest import PASSWORD, basic


@pytest.fixture
def counted(runtime):
    """The secrets the server ran argon2id on, in order."""
    seen: list[str] = []
    lock = threading.Lock()
    real = runtime.passwords.verify

    def verify(stored_hash, secret):
        with lock:
            seen.append(secret)
        return real(stored_hash, secret)

    runtime.passwords.verify = verify
    return seen


@pytest.fixture
def setup(world, client):
    # These tests count verifications: the client's following of links (which repeats
    # requests with the same credential) would verify and cache passwords of its own.
    client.follow_links = False
    admin = world.user("root", site_admin=True)
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return admin, alice


def test_one_verification_for_many_requests(client, setup, counted):
    _, alice = setup
    for _ in range(5):
        assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    r = client.get("/acme/widget.git/info/refs?service=git-upload-pack", headers=alice.auth)
    assert r.status_code == 200
    assert counted.count(PASSWORD) == 1


def test_nothing_of_the_password_is_kept(client, runtime, setup):
    _, alice = setup
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    cache = runtime.account_passwords.verified
    assert cache is not None
    entries = dict(cache._entries._entries)
    assert len(entries) == 1
    (key, (_, remembered)), = entries.items()
    assert PASSWORD not in key and PASSWORD not in repr(remembered)
    assert key == cache.key("alice", PASSWORD) and len(key) == 64


def test_a_wrong_password_is_still_verified_and_counted(client, runtime, setup, counted):
    _, alice = setup
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    assert client.get("/2.0/user", headers=basic("alice", "wrong")).status_code == 401
    assert counted == [PASSWORD, "wrong"]
    assert runtime.password_guard.state("alice").failures == 1


def test_a_cached_password_still_meets_the_lock(client, runtime, setup, counted):
    _, alice = setup
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    for _ in range(runtime.settings.auth_failure_limit):
        assert client.get("/2.0/user", headers=basic("alice", "wrong")).status_code == 401
    assert client.get("/2.0/user", headers=alice.auth).status_code == 429
    assert counted.count(PASSWORD) == 1


def test_password_change_drops_it(client, runtime, setup, counted):
    _, alice = setup
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    with runtime.unit_of_work() as store:
        caller = Caller(store, AuthContext(UserPrincipal(alice.id, "alice"),
                                           CredentialKind.PASSWORD))
        passwords.change_password(caller, runtime.account_passwords, current=PASSWORD,
                                  new="another fine passphrase")
    assert client.get("/2.0/user", headers=alice.auth).status_code == 401
    assert client.get("/2.0/user", headers=basic("alice", "another fine passphrase")).status_code == 200


def test_deactivation_drops_it(client, setup):
    admin, alice = setup
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    r = client.put("/rest/api/1.0/admin/users", json={"name": "alice", "active": False},
                   headers=admin.auth)
    assert r.status_code == 200, r.text
    assert client.get("/2.0/user", headers=alice.auth).status_code == 401


def test_the_generation_drops_it(client, setup, counted):
    _, alice = setup
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    # Any revocation bumps the credential generation: the next request verifies again.
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "x", "permissions": ["REPO_READ"]}, headers=alice.auth).json()
    assert counted.count(PASSWORD) == 1
    r = client.delete(f"/rest/access-tokens/1.0/users/alice/{pat['id']}", headers=alice.auth)
    assert r.status_code == 204
    assert counted.count(PASSWORD) == 1  # that request still knew the old generation
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    assert counted.count(PASSWORD) == 2


def test_lifetime(client, runtime, setup, counted):
    _, alice = setup
    cache = runtime.account_passwords.verified
    now = [1000.0]
    cache.clock = lambda: now[0]
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    now[0] += cache.lifetime - 1
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    assert counted.count(PASSWORD) == 1
    now[0] += 2
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    assert counted.count(PASSWORD) == 2


def test_off_when_lifetime_is_zero(client, runtime, setup, counted):
    _, alice = setup
    runtime.account_passwords.verified.lifetime = 0
    for _ in range(3):
        assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    assert counted.count(PASSWORD) == 3
