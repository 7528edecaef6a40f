"""GET /2.0/user, GET /2.0/user/workspaces and the Server admin API for creating users."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.integration.api_checks import BASE, cloud_error, cloud_object, cloud_page, server_error
from tests.integration.conftest import PASSWORD, basic


def test_current_user(world, client):
    alice = world.user("alice")
    r = client.get("/2.0/user", headers=alice.auth)
    assert r.status_code == 200, r.text
    body = cloud_object(r.json(), "user")
    assert body["username"] == "alice"
    assert body["display_name"] == "alice"
    assert body["uuid"].startswith("{") and body["uuid"].endswith("}")
    assert len(body["account_id"]) == 32
    assert body["account_status"] == "active"
    assert body["links"]["self"]["href"] == f"{BASE}/2.0/users/{body['uuid']}"
    # Trailing slashes are accepted.
    assert client.get("/2.0/user/", headers=alice.auth).json() == body


def test_current_user_needs_a_good_credential(world, client):
    world.user("alice")
    cloud_error(client.get("/2.0/user"), 401)
    cloud_error(client.get("/2.0/user", headers=basic("alice", "wrong password")), 401)
    cloud_error(client.get("/2.0/user", headers=basic("nobody", PASSWORD)), 401)
    cloud_error(client.get("/2.0/user", headers={"Authorization": "Basic !!!"}), 401)
    cloud_error(client.get("/2.0/user", headers={"Authorization": "Digest abc"}), 401)
    cloud_error(client.get("/2.0/user", headers={"Authorization": "Bearer nonsense"}), 401)


def test_my_workspaces(world, client):
    alice = world.user("alice")
    bob = world.user("bob")
    r = client.get("/2.0/user/workspaces", headers=alice.auth)
    assert r.status_code == 200
    assert cloud_page(r.json(), size=0) == []

    world.workspace(alice, "acme")
    world.workspace(bob, "bobs")
    r = client.put("/2.0/workspaces/bobs/members/alice", json={"role": "member"}, headers=bob.auth)
    assert r.status_code == 200, r.text

    values = cloud_page(client.get("/2.0/user/workspaces", headers=alice.auth).json(), size=2)
    assert [(v["workspace"]["slug"], v["administrator"]) for v in values] == [
        ("acme", True),
        ("bobs", False),
    ]
    for v in values:
        cloud_object(v, "workspace_access")
        cloud_object(v["workspace"], "workspace")
    cloud_error(client.get("/2.0/user/workspaces"), 401)


def create_user(client, headers, **params):
    return client.post("/rest/api/1.0/admin/users?" + urlencode(params), headers=headers)


def test_site_admin_creates_a_user_who_can_sign_in(world, client):
    root = world.user("root", site_admin=True)
    r = create_user(
        client,
        root.auth,
        name="carol",
        password="carol's long password",
        displayName="Carol C",
        emailAddress="carol@example.com",
    )
    assert r.status_code == 204, r.text
    assert r.content == b""
    me = client.get("/2.0/user", headers=basic("carol", "carol's long password"))
    assert me.status_code == 200, me.text
    assert me.json()["display_name"] == "Carol C"
    # `latest` is an alias of 1.0, and a trailing slash is fine.
    r = client.post(
        "/rest/api/latest/admin/users/?"
        + urlencode({"name": "dave", "password": "x" * 12, "emailAddress": "d@example.com"}),
        headers=root.auth,
    )
    assert r.status_code == 204, r.text


def test_creating_users_is_for_site_admins(world, client):
    world.user("root", site_admin=True)
    alice = world.user("alice")
    params = {"name": "eve", "password": "x" * 12, "emailAddress": "eve@example.com"}
    server_error(create_user(client, alice.auth, **params), 403)
    server_error(create_user(client, {}, **params), 401)
    server_error(create_user(client, basic("alice", "bad"), **params), 401)
    assert client.get("/2.0/user", headers=basic("eve", "x" * 12)).status_code == 401


def test_create_user_bad_input(world, client):
    root = world.user("root", site_admin=True)
    ok = {"name": "frank", "password": "x" * 12, "emailAddress": "f@example.com"}
    for missing in ok:
        params = {k: v for k, v in ok.items() if k != missing}
        server_error(create_user(client, root.auth, **params), 400, missing)
    server_error(create_user(client, root.auth, **{**ok, "password": "short"}), 400)
    server_error(create_user(client, root.auth, **{**ok, "name": "Bad Name!"}), 400)
    server_error(create_user(client, root.auth, **{**ok, "name": "x-token-auth"}), 400)
    server_error(create_user(client, root.auth, **{**ok, "emailAddress": "nope"}), 400)
    server_error(create_user(client, root.auth, **{**ok, "displayName": "a\u0001b"}), 400)
    assert create_user(client, root.auth, **ok).status_code == 204
    server_error(create_user(client, root.auth, **ok), 409, "already exists")
    server_error(create_user(client, root.auth, **{**ok, "name": "FRANK"}), 409)
    # An API version that does not exist is a path that does not exist.
    server_error(
        client.post("/rest/api/2.0/admin/users?" + urlencode(ok), headers=root.auth), 404
    )
