"""Personal access tokens through the Bitbucket Server REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gitward.credentials import codec
from gitward.credentials.last_use import LastUseThrottle
from gitward.storage.models import AuditEvent, PersonalAccessToken, utcnow
from tests.integration.conftest import basic, bearer

API = "/rest/access-tokens/1.0/users"


@pytest.fixture
def setup(world):
    """alice owns workspace acme with project PRJ and repositories widget (private), docs
    (public); bob has write on widget through a repository grant."""
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.repository(alice, "acme", "docs", "PRJ", private=False)
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    return alice, bob


def create(client, account, permissions, **extra):
    body = {"name": "ci", "permissions": permissions, **extra}
    return client.put(f"{API}/{account.username}", json=body, headers=account.auth)


def error_message(response):
    return response.json()["errors"][0]["message"]


def test_create_returns_secret_once_in_server_json(client, setup):
    alice, _ = setup
    r = create(client, alice, ["PROJECT_READ", "REPO_WRITE"], expiryDays=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert codec.prefix_of(body["token"]) == "gwpat_"
    assert body["name"] == "ci"
    assert body["permissions"] == ["PROJECT_READ", "REPO_WRITE"]
    assert body["expiryDays"] == 30
    assert isinstance(body["createdDate"], int)
    assert body["user"]["slug"] == "alice"
    listed = client.get(f"{API}/alice", headers=alice.auth).json()
    assert listed["size"] == 1 and listed["isLastPage"] is True and listed["start"] == 0
    assert "token" not in listed["values"][0]
    one = client.get(f"{API}/alice/{body['id']}", headers=alice.auth).json()
    assert "token" not in one and one["id"] == body["id"]
    latest = client.get(f"/rest/access-tokens/latest/users/alice/{body['id']}", headers=alice.auth)
    assert latest.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"permissions": ["REPO_READ"]}, "name is required"),
        ({"name": "   ", "permissions": ["REPO_READ"]}, "name is required"),
        ({"name": "x" * 256, "permissions": ["REPO_READ"]}, "at most 255"),
        ({"name": "n", "permissions": []}, "non-empty list"),
        ({"name": "n", "permissions": ["PROJECT_READ"]}, "repository permission"),
        ({"name": "n", "permissions": ["REPO_READ", "BOGUS"]}, "Unknown permission: BOGUS"),
        ({"name": "n", "permissions": ["REPO_READ", "REPO_WRITE"]}, "only one repository"),
        ({"name": "n", "permissions": ["PROJECT_WRITE", "REPO_READ"]}, "at least the project"),
        (
            {"name": "n", "permissions": ["REPO_READ", "ADMIN"]},
            "Tokens may not have the following permission: ADMIN",
        ),
        (
            {"name": "n", "permissions": ["REPO_READ", "SYS_ADMIN"]},
            "Tokens may not have the following permission: SYS_ADMIN",
        ),
        ({"name": "n", "permissions": ["REPO_READ"], "expiryDays": 0}, "positive integer"),
        ({"name": "n", "permissions": ["REPO_READ"], "expiryDays": "5"}, "positive integer"),
        ({"name": "n", "permissions": ["REPO_READ"], "expiryDays": 1.5}, "positive integer"),
        ({"name": "n", "permissions": "REPO_READ"}, "non-empty list"),
    ],
)
def test_create_validation(client, setup, body, message):
    alice, _ = setup
    r = client.put(f"{API}/alice", json=body, headers=alice.auth)
    assert r.status_code == 400, r.text
    assert message in error_message(r)
    assert client.get(f"{API}/alice", headers=alice.auth).json()["size"] == 0


def test_site_policy_on_expiry_and_count(client, runtime, setup):
    alice, _ = setup
    object.__setattr__(runtime.settings, "pat_max_expiry_days", 90)
    object.__setattr__(runtime.settings, "pat_expiry_required", True)
    object.__setattr__(runtime.settings, "pat_max_per_user", 2)
    r = create(client, alice, ["REPO_READ"])
    assert r.status_code == 400 and "requires tokens to expire" in error_message(r)
    r = create(client, alice, ["REPO_READ"], expiryDays=91)
    assert r.status_code == 400 and "at most 90" in error_message(r)
    assert create(client, alice, ["REPO_READ"], expiryDays=90).status_code == 200
    assert create(client, alice, ["REPO_READ"], expiryDays=1).status_code == 200
    r = create(client, alice, ["REPO_READ"], expiryDays=1)
    assert r.status_code == 400 and "at most 2" in error_message(r)


def test_who_may_create(client, world, setup):
    alice, bob = setup
    root = world.user("root", site_admin=True)
    # A site administrator cannot create a token for someone else.
    r = client.put(f"{API}/alice", json={"name": "x", "permissions": ["REPO_READ"]},
                   headers=root.auth)
    assert r.status_code == 403
    assert r.json()["errors"][0]["exceptionName"]
    # Another user cannot even see alice's tokens.
    r = client.put(f"{API}/alice", json={"name": "x", "permissions": ["REPO_READ"]},
                   headers=bob.auth)
    assert r.status_code == 404
    assert client.get(f"{API}/alice", headers=bob.auth).status_code == 404
    # Anonymous: 401 with a challenge.
    r = client.put(f"{API}/alice", json={"name": "x", "permissions": ["REPO_READ"]})
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    # A token cannot create a token, even with the highest permissions.
    secret = create(client, alice, ["PROJECT_ADMIN", "REPO_ADMIN"]).json()["token"]
    r = client.put(f"{API}/alice", json={"name": "x", "permissions": ["REPO_READ"]},
                   headers=bearer(secret))
    assert r.status_code == 403
    assert client.get(f"{API}/alice", headers=bearer(secret)).status_code == 403
    # Unknown user.
    assert client.get(f"{API}/nobody", headers=alice.auth).status_code == 404


def test_owner_and_site_admin_list_modify_revoke(client, world, setup):
    alice, _ = setup
    root = world.user("root", site_admin=True)
    token = create(client, alice, ["REPO_READ"], expiryDays=10).json()
    assert client.get(f"{API}/alice", headers=root.auth).json()["size"] == 1
    r = client.post(f"{API}/alice/{token['id']}", json={"name": "renamed"}, headers=root.auth)
    assert r.status_code == 200
    assert r.json()["name"] == "renamed" and r.json()["permissions"] == ["REPO_READ"]
    r = client.post(
        f"{API}/alice/{token['id']}",
        json={"permissions": ["PROJECT_READ", "REPO_WRITE"]},
        headers=alice.auth,
    )
    assert r.status_code == 200
    assert r.json()["name"] == "renamed"
    assert r.json()["permissions"] == ["PROJECT_READ", "REPO_WRITE"]
    assert r.json()["expiryDays"] == 10
    r = client.post(f"{API}/alice/{token['id']}", json={"expiryDays": 99}, headers=alice.auth)
    assert r.status_code == 400 and "cannot be changed" in error_message(r)
    r = client.post(f"{API}/alice/{token['id']}", json={"permissions": ["ADMIN"]},
                    headers=alice.auth)
    assert r.status_code == 400
    assert client.delete(f"{API}/alice/{token['id']}", headers=root.auth).status_code == 204
    assert client.get(f"{API}/alice/{token['id']}", headers=alice.auth).status_code == 404
    assert client.delete(f"{API}/alice/{token['id']}", headers=alice.auth).status_code == 404
    assert client.get(f"{API}/alice/not-a-number", headers=alice.auth).status_code == 404


def test_server_paging(client, setup):
    alice, _ = setup
    for i in range(5):
        assert client.put(f"{API}/alice", json={"name": f"t{i}", "permissions": ["REPO_READ"]},
                          headers=alice.auth).status_code == 200
    page = client.get(f"{API}/alice?limit=2", headers=alice.auth).json()
    assert page["size"] == 2 and page["limit"] == 2 and page["isLastPage"] is False
    assert page["nextPageStart"] == 2
    last = client.get(f"{API}/alice?limit=2&start=4", headers=alice.auth).json()
    assert last["size"] == 1 and last["isLastPage"] is True and "nextPageStart" not in last
    assert client.get(f"{API}/alice?limit=zero", headers=alice.auth).status_code == 400


@pytest.mark.parametrize("presentation", ["basic", "bearer"])
def test_use_on_rest(client, setup, presentation):
    _, bob = setup
    secret = create(client, bob, ["REPO_READ"]).json()["token"]
    headers = basic("bob", secret) if presentation == "basic" else bearer(secret)
    r = client.get("/2.0/repositories/acme/widget", headers=headers)
    assert r.status_code == 200
    assert client.get("/2.0/user", headers=headers).json()["username"] == "bob"
    # Basic with another user's name is refused.
    assert client.get("/2.0/user", headers=basic("alice", secret)).status_code == 401
    # A damaged token is refused (and never reaches the database).
    damaged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert client.get("/2.0/user", headers=bearer(damaged)).status_code == 401


def test_token_is_bounded_by_its_permissions(client, setup):
    alice, _ = setup
    secret = create(client, alice, ["REPO_READ"]).json()["token"]
    h = bearer(secret)
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    r = client.put("/2.0/repositories/acme/widget", json={"description": "x"}, headers=h)
    assert r.status_code == 403
    assert "REPO_ADMIN" in r.json()["error"]["message"]
    r = client.put(
        "/2.0/repositories/acme/widget/permissions-config/users/bob",
        json={"permission": "admin"},
        headers=h,
    )
    assert r.status_code == 403
    # Creating a repository needs PROJECT_ADMIN.
    r = client.post("/2.0/repositories/acme/new", json={"project": {"key": "PRJ"}}, headers=h)
    assert r.status_code == 403


def test_token_never_does_workspace_or_site_administration(client, world, setup):
    alice, _ = setup
    root = world.user("root", site_admin=True)
    secret = create(client, alice, ["PROJECT_ADMIN", "REPO_ADMIN"]).json()["token"]
    h = bearer(secret)
    r = client.put("/2.0/workspaces/acme/members/bob", json={"role": "owner"}, headers=h)
    assert r.status_code == 403
    assert client.post("/2.0/workspaces", json={"slug": "evil"}, headers=h).status_code == 403
    r = client.post("/2.0/workspaces/acme/projects", json={"key": "NEW", "name": "n"}, headers=h)
    assert r.status_code == 403
    root_secret = create(client, root, ["PROJECT_ADMIN", "REPO_ADMIN"]).json()["token"]
    r = client.post(
        "/rest/api/1.0/admin/users?name=eve&password=longenough1&emailAddress=e@x.org",
        headers=bearer(root_secret),
    )
    assert r.status_code == 403
    # With the password the same owner can.
    assert client.put("/2.0/workspaces/acme/members/bob", json={"role": "member"},
                      headers=alice.auth).status_code == 200


def test_live_levels_bound_the_token(client, world, setup):
    alice, bob = setup
    secret = create(client, bob, ["REPO_WRITE"]).json()["token"]
    h = bearer(secret)
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    # Downgrade: the token's REPO_WRITE no longer means write.
    world.grant_repo(alice, "acme", "widget", "bob", "read")
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    # Grant removed: the repository disappears for the token on the next request.
    r = client.delete("/2.0/repositories/acme/widget/permissions-config/users/bob",
                      headers=alice.auth)
    assert r.status_code == 204
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 404
    # Public repositories stay readable, as for the user.
    assert client.get("/2.0/repositories/acme/docs", headers=h).status_code == 200


def test_workspace_removal_deactivation_and_deletion_cut_access(client, world, setup):
    alice, bob = setup
    root = world.user("root", site_admin=True)
    carol = world.user("carol")
    client.put("/2.0/workspaces/acme/members/carol", json={"role": "owner"}, headers=alice.auth)
    secret = create(client, carol, ["REPO_READ"]).json()["token"]
    h = bearer(secret)
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    client.delete("/2.0/workspaces/acme/members/carol", headers=alice.auth)
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 404

    bob_secret = create(client, bob, ["REPO_READ"]).json()["token"]
    hb = bearer(bob_secret)
    assert client.get("/2.0/repositories/acme/widget", headers=hb).status_code == 200
    r = client.put("/rest/api/1.0/admin/users", json={"name": "bob", "active": False},
                   headers=root.auth)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/2.0/repositories/acme/widget", headers=hb).status_code == 401
    client.put("/rest/api/1.0/admin/users", json={"name": "bob", "active": True}, headers=root.auth)
    assert client.get("/2.0/repositories/acme/widget", headers=hb).status_code == 200
    r = client.delete("/rest/api/1.0/admin/users?name=bob", headers=root.auth)
    assert r.status_code == 200
    assert client.get("/2.0/repositories/acme/widget", headers=hb).status_code == 401


def test_expiry_is_enforced_to_the_second(client, runtime, setup):
    alice, _ = setup
    token = create(client, alice, ["REPO_READ"], expiryDays=1).json()
    h = bearer(token["token"])
    with runtime.unit_of_work() as store:
        expires = store.credentials.pat_by_id(int(token["id"])).expires_on
    tokens = runtime.personal_tokens
    try:
        tokens.clock = lambda: expires - timedelta(seconds=1)
        assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
        tokens.clock = lambda: expires
        r = client.get("/2.0/repositories/acme/widget", headers=h)
        assert r.status_code == 401
        assert "expired" in r.json()["error"]["message"]
    finally:
        tokens.clock = utcnow


def test_last_used_is_recorded_at_most_once_a_minute(client, runtime, setup):
    alice, _ = setup
    token = create(client, alice, ["REPO_READ"]).json()
    assert "lastAuthenticated" not in token
    h = bearer(token["token"])
    client.get("/2.0/user", headers=h)
    first = client.get(f"{API}/alice/{token['id']}", headers=alice.auth).json()
    assert isinstance(first["lastAuthenticated"], int)
    assert first["lastUsedIp"] == "testclient"
    client.get("/2.0/user", headers=h)
    second = client.get(f"{API}/alice/{token['id']}", headers=alice.auth).json()
    assert second["lastAuthenticated"] == first["lastAuthenticated"]
    # Another process (its own throttle) within the minute: the row is not written again.
    tokens = runtime.personal_tokens
    tokens._last_use = LastUseThrottle()
    client.get("/2.0/user", headers=h)
    third = client.get(f"{API}/alice/{token['id']}", headers=alice.auth).json()
    assert third["lastAuthenticated"] == first["lastAuthenticated"]
    # A minute later it is.
    tokens._last_use = LastUseThrottle()
    tokens.clock = lambda: utcnow() + timedelta(seconds=61)
    try:
        client.get("/2.0/user", headers=h)
    finally:
        tokens.clock = utcnow
    fourth = client.get(f"{API}/alice/{token['id']}", headers=alice.auth).json()
    assert fourth["lastAuthenticated"] >= first["lastAuthenticated"] + 60_000


def test_rotation(client, world, setup):
    alice, _ = setup
    created = create(client, alice, ["PROJECT_READ", "REPO_WRITE"], expiryDays=7).json()
    old = created["token"]
    r = client.post(f"{API}/alice/{created['id']}/rotate", headers=alice.auth)
    assert r.status_code == 200, r.text
    rotated = r.json()
    new = rotated["token"]
    assert new != old and codec.prefix_of(new) == "gwpat_"
    assert rotated["id"] == created["id"] and rotated["name"] == created["name"]
    assert rotated["permissions"] == created["permissions"]
    assert rotated["expiryDate"] == created["expiryDate"]
    assert client.get("/2.0/user", headers=bearer(old)).status_code == 401
    assert client.get("/2.0/user", headers=bearer(new)).status_code == 200
    # The token may rotate itself...
    r = client.post(f"{API}/alice/{created['id']}/rotate", headers=bearer(new))
    assert r.status_code == 200
    newest = r.json()["token"]
    assert client.get("/2.0/user", headers=bearer(new)).status_code == 401
    # ...but not another token, and a site administrator may not rotate someone's token.
    other = create(client, alice, ["REPO_READ"]).json()
    r = client.post(f"{API}/alice/{other['id']}/rotate", headers=bearer(newest))
    assert r.status_code == 403
    root = world.user("root", site_admin=True)
    assert client.post(f"{API}/alice/{other['id']}/rotate", headers=root.auth).status_code == 403


def test_audit_events(client, runtime, setup):
    alice, _ = setup
    token = create(client, alice, ["REPO_READ"]).json()
    client.post(f"{API}/alice/{token['id']}", json={"name": "n2"}, headers=alice.auth)
    rotated = client.post(f"{API}/alice/{token['id']}/rotate", headers=alice.auth).json()
    client.get("/2.0/user", headers=bearer(token["token"]))  # the old secret: a failed use
    client.delete(f"{API}/alice/{token['id']}", headers=alice.auth)
    client.get("/2.0/user", headers=bearer(rotated["token"]))  # revoked: a failed use
    with runtime.unit_of_work() as store:
        actions = store.open().scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        details = store.open().scalars(select(AuditEvent.details)).all()
    for action in ("pat.create", "pat.modify", "pat.rotate", "pat.revoke"):
        assert action in actions
    assert actions.count("auth.failed") >= 2
    for secret in (token["token"], rotated["token"]):
        assert all(secret not in str(d) for d in details)


def test_database_keeps_only_keyed_hashes(client, runtime, setup):
    alice, _ = setup
    secret = create(client, alice, ["REPO_READ"]).json()["token"]
    with runtime.unit_of_work() as store:
        row = store.open().scalar(select(PersonalAccessToken))
        assert row.token_hash == codec.keyed_hash(runtime.secret_key, secret)
        assert secret not in row.token_hash


def test_revocation_reaches_every_worker(settings, runtime, client, setup):
    """A second runtime on the same database stands for another worker process or node: its
    cache has seen the token, and still refuses it on the request after the revocation."""
    from gitward.runtime import Runtime
    from gitward.web.app import create_app
    from tests.asgi_client import AppClient

    alice, _ = setup
    second = Runtime.open(settings)
    try:
        with AppClient(create_app(second)) as b:
            for change in ("revoke", "modify", "rotate"):
                token = create(client, alice, ["REPO_WRITE"]).json()
                h = bearer(token["token"])
                assert b.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
                assert b.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
                url = f"{API}/alice/{token['id']}"
                if change == "revoke":
                    assert client.delete(url, headers=alice.auth).status_code == 204
                    assert b.get("/2.0/user", headers=h).status_code == 401
                elif change == "modify":
                    r = client.post(url, json={"permissions": ["REPO_READ"]}, headers=alice.auth)
                    assert r.status_code == 200
                    r = b.put("/2.0/repositories/acme/widget/permissions-config/users/bob",
                              json={"permission": "read"}, headers=h)
                    assert r.status_code == 403
                else:
                    assert client.post(url + "/rotate", headers=alice.auth).status_code == 200
                    assert b.get("/2.0/user", headers=h).status_code == 401
    finally:
        second.close()


def test_revocation_is_seen_even_if_the_generation_row_was_lost(client, runtime, setup):
    from sqlalchemy import delete

    from gitward.storage.models import CredentialGeneration

    alice, _ = setup
    with runtime.unit_of_work() as store:
        store.open().execute(delete(CredentialGeneration))
    token = create(client, alice, ["REPO_READ"]).json()
    h = bearer(token["token"])
    assert client.get("/2.0/user", headers=h).status_code == 200
    assert client.get("/2.0/user", headers=h).status_code == 200  # from the cache
    assert client.delete(f"{API}/alice/{token['id']}", headers=alice.auth).status_code == 204
    assert client.get("/2.0/user", headers=h).status_code == 401


def test_token_ids_are_plain_digits(client, setup):
    alice, _ = setup
    token = create(client, alice, ["REPO_READ"]).json()
    assert token["id"] == "1" or token["id"].isdigit()
    arabic_one = "\u0661"  # isdigit() is true and int() would read it as 1
    for raw in (arabic_one, "9" * 40, "-1", "1.0"):
        r = client.get(f"{API}/alice/{raw}", headers=alice.auth)
        assert r.status_code == 404, raw
