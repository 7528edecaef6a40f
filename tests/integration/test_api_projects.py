"""Projects: list, create, get, update, delete, and user permissions on them."""

from __future__ import annotations

from tests.integration.api_checks import BASE, cloud_error, cloud_object, cloud_page


def setup(world):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    return alice, bob


def add_member(client, owner, user):
    r = client.put(f"/2.0/workspaces/acme/members/{user.username}", json={"role": "member"},
                   headers=owner.auth)
    assert r.status_code == 200, r.text


def test_create_get_list(world, client):
    alice, _ = setup(world)
    body = cloud_object(
        world.project(alice, "acme", "prj", description="things", is_private=False), "project"
    )
    assert body["key"] == "PRJ"
    assert body["is_private"] is False
    assert body["description"] == "things"
    assert body["links"]["self"]["href"] == f"{BASE}/2.0/workspaces/acme/projects/PRJ"
    cloud_object(body["workspace"], "workspace")
    r = client.get("/2.0/workspaces/acme/projects/PRJ", headers=alice.auth)
    assert r.status_code == 200
    assert r.json()["uuid"] == body["uuid"]
    # Keys are case-insensitive in paths.
    assert client.get("/2.0/workspaces/acme/projects/prj", headers=alice.auth).status_code == 200
    values = cloud_page(client.get("/2.0/workspaces/acme/projects", headers=alice.auth).json(),
                        size=1)
    assert values[0]["key"] == "PRJ"


def test_create_refusals(world, client):
    alice, bob = setup(world)
    world.project(alice, "acme", "PRJ")
    url = "/2.0/workspaces/acme/projects"
    cloud_error(client.post(url, json={"key": "prj", "name": "again"}, headers=alice.auth), 400,
                "already exists")
    for key in ["", "1ABC", "A-B", "A B", "_A", "A" * 65, "É"]:
        cloud_error(client.post(url, json={"key": key, "name": "n"}, headers=alice.auth), 400)
    cloud_error(client.post(url, json={"key": "OK", "name": "  "}, headers=alice.auth), 400)
    cloud_error(client.post(url, json={"key": "OK"}, headers=alice.auth), 400, "name")
    cloud_error(client.post(url, json={"key": "OK", "name": "n", "is_private": "yes"},
                            headers=alice.auth), 400, "is_private")
    # Not a member: 404; member: 403 (creating projects is for owners); anonymous: 401.
    cloud_error(client.post(url, json={"key": "B", "name": "b"}, headers=bob.auth), 404)
    add_member(client, alice, bob)
    cloud_error(client.post(url, json={"key": "B", "name": "b"}, headers=bob.auth), 403, "owner")
    cloud_error(client.post(url, json={"key": "B", "name": "b"}), 401)
    cloud_error(client.post("/2.0/workspaces/nope/projects", json={"key": "B", "name": "b"},
                            headers=alice.auth), 404)


def test_visibility(world, client):
    alice, bob = setup(world)
    world.project(alice, "acme", "SECRET")
    world.project(alice, "acme", "OPEN", is_private=False)
    # Public project: anyone may read it, even anonymously; private: 404 / 401.
    assert client.get("/2.0/workspaces/acme/projects/OPEN").status_code == 200
    assert client.get("/2.0/workspaces/acme/projects/OPEN", headers=bob.auth).status_code == 200
    cloud_error(client.get("/2.0/workspaces/acme/projects/SECRET", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme/projects/NOPE", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme/projects/SECRET"), 401)
    cloud_error(client.get("/2.0/workspaces/acme/projects/NOPE"), 401)
    # Listings show what the caller may read.
    keys = [p["key"] for p in client.get("/2.0/workspaces/acme/projects",
                                         headers=bob.auth).json()["values"]]
    assert keys == ["OPEN"]
    keys = [p["key"] for p in client.get("/2.0/workspaces/acme/projects",
                                         headers=alice.auth).json()["values"]]
    assert keys == ["OPEN", "SECRET"]
    # Visible but not administrable: 403 with the level that is missing.
    cloud_error(client.put("/2.0/workspaces/acme/projects/OPEN", json={"name": "x"},
                           headers=bob.auth), 403, "admin")
    cloud_error(client.delete("/2.0/workspaces/acme/projects/OPEN", headers=bob.auth), 403)
    cloud_error(client.delete("/2.0/workspaces/acme/projects/OPEN"), 401)
    cloud_error(client.put("/2.0/workspaces/acme/projects/SECRET", json={"name": "x"},
                           headers=bob.auth), 404)


def test_workspace_without_visible_projects_is_not_found(world, client):
    alice, bob = setup(world)
    world.project(alice, "acme", "SECRET")
    cloud_error(client.get("/2.0/workspaces/acme/projects", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/workspaces/acme/projects"), 401)
    cloud_error(client.get("/2.0/workspaces/nope/projects", headers=bob.auth), 404)
    add_member(client, alice, bob)
    r = client.get("/2.0/workspaces/acme/projects", headers=bob.auth)
    assert r.status_code == 200
    assert cloud_page(r.json(), size=0) == []


def test_update(world, client):
    alice, _ = setup(world)
    world.project(alice, "acme", "PRJ")
    world.project(alice, "acme", "TAKEN")
    url = "/2.0/workspaces/acme/projects/PRJ"
    r = client.put(url, json={"name": "Renamed", "description": "d", "is_private": False},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["description"], r.json()["is_private"]) == (
        "Renamed", "d", False)
    cloud_error(client.put(url, json={"key": "taken"}, headers=alice.auth), 400, "already exists")
    cloud_error(client.put(url, json={"key": "9"}, headers=alice.auth), 400)
    cloud_error(client.put(url, json={"name": ""}, headers=alice.auth), 400)
    cloud_error(client.put(url, json={"is_private": "no"}, headers=alice.auth), 400)
    r = client.put(url, json={"key": "new"}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["key"] == "NEW"
    assert r.json()["links"]["self"]["href"].endswith("/projects/NEW")
    cloud_error(client.get(url, headers=alice.auth), 404)
    assert client.get("/2.0/workspaces/acme/projects/NEW", headers=alice.auth).json()["name"] == (
        "Renamed")


def test_delete(world, client):
    alice, _ = setup(world)
    world.project(alice, "acme", "PRJ")
    world.project(alice, "acme", "EMPTY")
    world.repository(alice, "acme", "widget", "PRJ")
    cloud_error(client.delete("/2.0/workspaces/acme/projects/PRJ", headers=alice.auth), 400,
                "repositories")
    assert client.delete("/2.0/workspaces/acme/projects/EMPTY",
                         headers=alice.auth).status_code == 204
    cloud_error(client.get("/2.0/workspaces/acme/projects/EMPTY", headers=alice.auth), 404)
    cloud_error(client.delete("/2.0/workspaces/acme/projects/EMPTY", headers=alice.auth), 404)


def test_project_permissions_take_effect_on_the_next_request(world, client):
    alice, bob = setup(world)
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    url = "/2.0/workspaces/acme/projects/PRJ/permissions-config/users/bob"
    project_url = "/2.0/workspaces/acme/projects/PRJ"
    repo_url = "/2.0/repositories/acme/widget"
    cloud_error(client.get(project_url, headers=bob.auth), 404)

    r = client.put(url, json={"permission": "read"}, headers=alice.auth)
    assert r.status_code == 201, r.text
    body = cloud_object(r.json(), "project_user_permission")
    assert body["permission"] == "read" and body["user"]["username"] == "bob"
    assert body["project"]["key"] == "PRJ"
    assert client.get(project_url, headers=bob.auth).status_code == 200
    assert client.get(repo_url, headers=bob.auth).status_code == 200  # project read reaches repos
    cloud_error(client.put(project_url, json={"name": "x"}, headers=bob.auth), 403)
    cloud_error(client.post("/2.0/repositories/acme/new", json={"project": {"key": "PRJ"}},
                            headers=bob.auth), 403, "create-repo")

    r = client.put(url, json={"permission": "write"}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["permission"] == "write"
    cloud_error(client.post("/2.0/repositories/acme/new", json={"project": {"key": "PRJ"}},
                            headers=bob.auth), 403)

    r = client.put(url, json={"permission": "create-repo"}, headers=alice.auth)
    assert r.status_code == 200
    r = client.post("/2.0/repositories/acme/new", json={"project": {"key": "PRJ"}},
                    headers=bob.auth)
    assert r.status_code == 200, r.text
    # create-repo acts as write on the project's repositories, not admin.
    cloud_error(client.delete("/2.0/repositories/acme/widget", headers=bob.auth), 403, "admin")

    assert client.put(url, json={"permission": "admin"}, headers=alice.auth).status_code == 200
    assert client.put(project_url, json={"description": "bob was here"},
                      headers=bob.auth).status_code == 200
    assert client.delete("/2.0/repositories/acme/new", headers=bob.auth).status_code == 204

    assert client.delete(url, headers=alice.auth).status_code == 204
    cloud_error(client.get(project_url, headers=bob.auth), 404)
    cloud_error(client.get(repo_url, headers=bob.auth), 404)
    cloud_error(client.delete(url, headers=alice.auth), 404)


def test_project_permission_bad_input(world, client):
    alice, bob = setup(world)
    world.project(alice, "acme", "PRJ")
    url = "/2.0/workspaces/acme/projects/PRJ/permissions-config/users/"
    cloud_error(client.put(url + "bob", json={"permission": "owner"}, headers=alice.auth), 400,
                "permission")
    cloud_error(client.put(url + "bob", json={"permission": ["read"]}, headers=alice.auth), 400)
    cloud_error(client.put(url + "bob", json={}, headers=alice.auth), 400)
    cloud_error(client.put(url + "nobody", json={"permission": "read"}, headers=alice.auth), 404)
    cloud_error(client.delete(url + "nobody", headers=alice.auth), 404)
    cloud_error(client.put(url + "bob", json={"permission": "read"}, headers=bob.auth), 404)
    cloud_error(client.put(url + "bob", json={"permission": "read"}), 401)
    cloud_error(client.put("/2.0/workspaces/acme/projects/NOPE/permissions-config/users/bob",
                           json={"permission": "read"}, headers=alice.auth), 404)
