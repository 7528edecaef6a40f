"""Workspaces and their members: POST /2.0/workspaces, GET, members PUT/DELETE."""

from __future__ import annotations

from tests.integration.api_checks import BASE, cloud_error, cloud_object, cloud_page


def member_ids(client, user):
    me = client.get("/2.0/user", headers=user.auth).json()
    return me["uuid"], me["account_id"]


def test_create_workspace_makes_the_caller_owner(world, client):
    alice = world.user("alice")
    body = cloud_object(world.workspace(alice, "Acme"), "workspace")
    assert body["slug"] == "acme"
    assert body["links"]["self"]["href"] == f"{BASE}/2.0/workspaces/acme"
    r = client.get("/2.0/workspaces/acme", headers=alice.auth)
    assert r.status_code == 200
    assert cloud_object(r.json(), "workspace")["slug"] == "acme"
    values = cloud_page(client.get("/2.0/workspaces/acme/members", headers=alice.auth).json(),
                        size=1)
    cloud_object(values[0], "workspace_membership")
    assert (values[0]["role"], values[0]["user"]["username"]) == ("owner", "alice")


def test_create_workspace_refusals(world, client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    cloud_error(client.post("/2.0/workspaces", json={"slug": "x"}), 401)
    cloud_error(client.post("/2.0/workspaces", json={"slug": "acme"}, headers=alice.auth), 400,
                "already exists")
    cloud_error(client.post("/2.0/workspaces", json={"slug": "ACME"}, headers=alice.auth), 400)
    for slug in ["", "-acme", "has space", "a/b", "x" * 64, "rest", "2.0", "dots.bad", "é",
                 "scm", "login", "account", "admin", "static"]:
        cloud_error(client.post("/2.0/workspaces", json={"slug": slug}, headers=alice.auth), 400)
    cloud_error(client.post("/2.0/workspaces", json={"name": "no slug"}, headers=alice.auth),
                400, "slug")


def test_workspace_visibility(world, client):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    # Not a member: 404, as for a workspace that does not exist. Anonymous: 401.
    cloud_error(client.get("/2.0/workspaces/acme", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/workspaces/nope", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme/members", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme"), 401)
    cloud_error(client.get("/2.0/workspaces/nope"), 401)
    # A member sees it but may not manage it: 403 naming what is missing.
    r = client.put("/2.0/workspaces/acme/members/bob", json={"role": "member"}, headers=alice.auth)
    assert r.status_code == 200, r.text
    assert client.get("/2.0/workspaces/acme", headers=bob.auth).status_code == 200
    assert client.get("/2.0/workspaces/acme/members", headers=bob.auth).status_code == 200
    cloud_error(
        client.put("/2.0/workspaces/acme/members/bob", json={"role": "owner"}, headers=bob.auth),
        403,
        "owner",
    )
    cloud_error(client.delete("/2.0/workspaces/acme/members/alice", headers=bob.auth), 403)
    cloud_error(client.post("/2.0/workspaces/acme/projects", json={"key": "P", "name": "P"},
                            headers=bob.auth), 403)


def test_members_by_username_uuid_and_account_id(world, client):
    alice = world.user("alice")
    users = [world.user(n) for n in ("bob", "carol", "dave")]
    world.workspace(alice, "acme")
    bob_uuid, _ = member_ids(client, users[0])
    _, carol_account = member_ids(client, users[1])
    for ref in (bob_uuid, carol_account, "DAVE"):
        r = client.put(f"/2.0/workspaces/acme/members/{ref}", json={"role": "member"},
                       headers=alice.auth)
        assert r.status_code == 200, (ref, r.text)
        assert cloud_object(r.json(), "workspace_membership")["role"] == "member"
    values = cloud_page(client.get("/2.0/workspaces/acme/members", headers=alice.auth).json(),
                        size=4)
    assert [(v["user"]["username"], v["role"]) for v in values] == [
        ("alice", "owner"), ("bob", "member"), ("carol", "member"), ("dave", "member"),
    ]
    # Membership changes take effect on the very next request.
    assert client.get("/2.0/workspaces/acme", headers=users[0].auth).status_code == 200
    assert client.delete(f"/2.0/workspaces/acme/members/{bob_uuid}",
                         headers=alice.auth).status_code == 204
    cloud_error(client.get("/2.0/workspaces/acme", headers=users[0].auth), 404)
    cloud_error(client.delete("/2.0/workspaces/acme/members/bob", headers=alice.auth), 404)


def test_owners_and_the_last_owner(world, client):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    cloud_error(client.put("/2.0/workspaces/acme/members/alice", json={"role": "member"},
                           headers=alice.auth), 400, "at least one owner")
    cloud_error(client.delete("/2.0/workspaces/acme/members/alice", headers=alice.auth), 400,
                "at least one owner")
    # A second owner can manage the workspace; then the first may step down.
    assert client.put("/2.0/workspaces/acme/members/bob", json={"role": "owner"},
                      headers=alice.auth).status_code == 200
    assert client.put("/2.0/workspaces/acme/members/alice", json={"role": "member"},
                      headers=bob.auth).status_code == 200
    cloud_error(client.put("/2.0/workspaces/acme/members/bob", json={"role": "member"},
                           headers=bob.auth), 400)
    cloud_error(client.put("/2.0/workspaces/acme/members/alice", json={"role": "owner"},
                           headers=alice.auth), 403)
    values = client.get("/2.0/user/workspaces", headers=alice.auth).json()["values"]
    assert values[0]["administrator"] is False
    assert client.delete("/2.0/workspaces/acme/members/alice", headers=bob.auth).status_code == 204
    cloud_error(client.get("/2.0/workspaces/acme", headers=alice.auth), 404)


def test_member_bad_input(world, client):
    alice = world.user("alice")
    world.user("bob")
    world.workspace(alice, "acme")
    url = "/2.0/workspaces/acme/members/bob"
    cloud_error(client.put(url, json={"role": "boss"}, headers=alice.auth), 400, "role")
    cloud_error(client.put(url, json={"role": 1}, headers=alice.auth), 400, "role")
    cloud_error(client.put(url, json={}, headers=alice.auth), 400, "role")
    cloud_error(client.put(url, json=["member"], headers=alice.auth), 400)
    for ref in ("nobody", "{00000000-0000-0000-0000-000000000000}", "0" * 32):
        cloud_error(client.put(f"/2.0/workspaces/acme/members/{ref}", json={"role": "member"},
                               headers=alice.auth), 404)
        cloud_error(client.delete(f"/2.0/workspaces/acme/members/{ref}", headers=alice.auth),
                    404)
    cloud_error(client.put("/2.0/workspaces/nope/members/bob", json={"role": "member"},
                           headers=alice.auth), 404)


def test_get_one_member_and_follow_its_link(world, client):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    values = client.get("/2.0/workspaces/acme/members", headers=alice.auth).json()["values"]
    href = values[0]["links"]["self"]["href"]
    r = client.get(href.removeprefix(BASE), headers=alice.auth)
    assert r.status_code == 200, r.text
    assert cloud_object(r.json(), "workspace_membership")["user"]["username"] == "alice"
    assert client.get("/2.0/workspaces/acme/members/alice", headers=alice.auth).json() == r.json()
    cloud_error(client.get("/2.0/workspaces/acme/members/bob", headers=alice.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme/members/nobody", headers=alice.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme/members/alice", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme/members/alice"), 401)
