"""Repositories: list, create, get, update, delete, permissions and branches."""

from __future__ import annotations

from tests.integration.api_checks import BASE, cloud_error, cloud_object, cloud_page


def setup(world):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    return alice, bob


def test_create_and_get(world, client):
    alice, _ = setup(world)
    r = client.post(
        "/2.0/repositories/acme/Widget",
        json={"scm": "git", "project": {"key": "prj"}, "is_private": True,
              "description": "a widget", "name": "The Widget", "unknown_field": 1},
        headers=alice.auth,
    )
    assert r.status_code == 200, r.text
    body = cloud_object(r.json(), "repository")
    assert body["slug"] == "widget" and body["full_name"] == "acme/widget"
    assert body["name"] == "The Widget" and body["description"] == "a widget"
    assert body["is_private"] is True
    assert body["mainbranch"] is None
    assert body["links"]["self"]["href"] == f"{BASE}/2.0/repositories/acme/widget"
    assert body["links"]["clone"][0]["href"] == f"{BASE}/acme/widget.git"
    cloud_object(body["project"], "project")
    cloud_object(body["workspace"], "workspace")
    got = client.get("/2.0/repositories/acme/widget", headers=alice.auth)
    assert got.status_code == 200 and got.json()["uuid"] == body["uuid"]
    assert client.get("/2.0/repositories/ACME/WIDGET/", headers=alice.auth).status_code == 200


def test_create_without_project_uses_the_oldest_project(world, client):
    alice, _ = setup(world)
    world.project(alice, "acme", "AAA")
    r = client.post("/2.0/repositories/acme/one", headers=alice.auth)
    assert r.status_code == 200, r.text
    assert r.json()["project"]["key"] == "PRJ"
    r = client.post("/2.0/repositories/acme/two", json={}, headers=alice.auth)
    assert r.status_code == 200, r.text


def test_create_refusals(world, client):
    alice, bob = setup(world)
    world.repository(alice, "acme", "widget", "PRJ")
    post = client.post
    cloud_error(post("/2.0/repositories/acme/widget", json={"project": {"key": "PRJ"}},
                     headers=alice.auth), 400, "already exists")
    cloud_error(post("/2.0/repositories/acme/WIDGET", json={}, headers=alice.auth), 400)
    for slug in ["x.git", ".hidden", "...", "has space", "x" * 64, "é", "a%00b"]:
        cloud_error(post(f"/2.0/repositories/acme/{slug}", json={}, headers=alice.auth), 400)
    cloud_error(post("/2.0/repositories/acme/hg", json={"scm": "hg"}, headers=alice.auth), 400,
                "scm")
    cloud_error(post("/2.0/repositories/acme/p", json={"project": {"key": "NOPE"}},
                     headers=alice.auth), 404)
    cloud_error(post("/2.0/repositories/acme/p", json={"project": "PRJ"}, headers=alice.auth),
                400, "project")
    cloud_error(post("/2.0/repositories/acme/p", json={"is_private": "yes"}, headers=alice.auth),
                400, "is_private")
    cloud_error(post("/2.0/repositories/nope/p", json={}, headers=alice.auth), 404)
    cloud_error(post("/2.0/repositories/acme/p", json={}, headers=bob.auth), 404)
    cloud_error(post("/2.0/repositories/acme/p", json={}), 401)
    # A workspace without projects: say how to fix it.
    world.workspace(alice, "empty")
    cloud_error(post("/2.0/repositories/empty/p", json={}, headers=alice.auth), 400, "project")


def test_public_and_private_access(world, client):
    alice, bob = setup(world)
    world.repository(alice, "acme", "private", "PRJ")
    world.repository(alice, "acme", "public", "PRJ", private=False)
    # Public: readable by anyone, even anonymously; not changeable.
    assert client.get("/2.0/repositories/acme/public").status_code == 200
    assert client.get("/2.0/repositories/acme/public", headers=bob.auth).status_code == 200
    assert client.get("/2.0/repositories/acme/public/refs/branches").status_code == 200
    cloud_error(client.put("/2.0/repositories/acme/public", json={"name": "x"},
                           headers=bob.auth), 403, "admin")
    cloud_error(client.delete("/2.0/repositories/acme/public", headers=bob.auth), 403)
    cloud_error(client.delete("/2.0/repositories/acme/public"), 401)
    # A bad credential is a 401, even on a public repository.
    cloud_error(client.get("/2.0/repositories/acme/public", headers={"Authorization": "Basic x"}),
                401)
    # Private: 404 for those who may not see it, 401 for anonymous (missing or not).
    cloud_error(client.get("/2.0/repositories/acme/private", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/repositories/acme/missing", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/repositories/nope/missing", headers=bob.auth), 404)
    cloud_error(client.put("/2.0/repositories/acme/private", json={}, headers=bob.auth), 404)
    cloud_error(client.delete("/2.0/repositories/acme/private", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/repositories/acme/private/refs/branches", headers=bob.auth), 404)
    for path in ("/2.0/repositories/acme/private", "/2.0/repositories/acme/missing",
                 "/2.0/repositories/nope/missing", "/2.0/repositories/acme/private/refs/branches"):
        cloud_error(client.get(path), 401)
    # Listings show what the caller may read; a workspace showing nothing is 404 / 401.
    names = [r["slug"] for r in client.get("/2.0/repositories/acme", headers=bob.auth)
             .json()["values"]]
    assert names == ["public"]
    names = [r["slug"] for r in client.get("/2.0/repositories/acme").json()["values"]]
    assert names == ["public"]
    names = [r["slug"] for r in client.get("/2.0/repositories/acme", headers=alice.auth)
             .json()["values"]]
    assert names == ["private", "public"]
    cloud_error(client.get("/2.0/repositories/nope", headers=bob.auth), 404)
    cloud_error(client.get("/2.0/repositories/nope"), 401)


def test_update(world, client):
    alice, _ = setup(world)
    world.project(alice, "acme", "OTHER")
    world.repository(alice, "acme", "widget", "PRJ")
    url = "/2.0/repositories/acme/widget"
    r = client.put(url, json={"name": "W", "description": "d", "is_private": False},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["description"], r.json()["is_private"]) == ("W", "d", False)
    assert client.get(url).status_code == 200  # now public
    r = client.put(url, json={"project": {"key": "other"}}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["project"]["key"] == "OTHER"
    cloud_error(client.put(url, json={"project": {"key": "NOPE"}}, headers=alice.auth), 400)
    cloud_error(client.put(url, json={"mainbranch": {"name": "main"}}, headers=alice.auth), 400,
                "main")
    cloud_error(client.put(url, json={"name": ""}, headers=alice.auth), 400)
    cloud_error(client.put(url, json={"is_private": 0}, headers=alice.auth), 400, "is_private")
    cloud_error(client.put(url, json={"name": "x" * 256}, headers=alice.auth), 400)
    cloud_error(client.put("/2.0/repositories/acme/nope", json={}, headers=alice.auth), 404)


def test_delete(world, client):
    alice, _ = setup(world)
    world.repository(alice, "acme", "widget", "PRJ")
    r = client.delete("/2.0/repositories/acme/widget", headers=alice.auth)
    assert r.status_code == 204 and r.content == b""
    cloud_error(client.get("/2.0/repositories/acme/widget", headers=alice.auth), 404)
    cloud_error(client.delete("/2.0/repositories/acme/widget", headers=alice.auth), 404)
    # The slug is free again.
    world.repository(alice, "acme", "widget", "PRJ")
    assert client.get("/2.0/repositories/acme/widget/refs/branches",
                      headers=alice.auth).json()["values"] == []


def test_branches_of_an_empty_repository(world, client):
    alice, _ = setup(world)
    world.repository(alice, "acme", "widget", "PRJ")
    r = client.get("/2.0/repositories/acme/widget/refs/branches", headers=alice.auth)
    assert r.status_code == 200, r.text
    assert cloud_page(r.json(), size=0) == []
    r = client.get("/2.0/repositories/acme/widget/refs/branches/", headers=alice.auth)
    assert r.status_code == 200


def test_repository_permissions_take_effect_on_the_next_request(world, client):
    alice, bob = setup(world)
    world.repository(alice, "acme", "widget", "PRJ")
    url = "/2.0/repositories/acme/widget/permissions-config/users/bob"
    repo = "/2.0/repositories/acme/widget"
    cloud_error(client.get(repo, headers=bob.auth), 404)

    r = client.put(url, json={"permission": "read"}, headers=alice.auth)
    assert r.status_code == 201, r.text
    body = cloud_object(r.json(), "repository_user_permission")
    assert body["permission"] == "read"
    assert body["user"]["username"] == "bob"
    assert body["repository"]["full_name"] == "acme/widget"
    assert client.get(repo, headers=bob.auth).status_code == 200
    assert client.get("/2.0/repositories/acme", headers=bob.auth).json()["size"] == 1
    cloud_error(client.put(repo, json={"name": "x"}, headers=bob.auth), 403, "admin")
    # A repository grant does not reveal the project.
    cloud_error(client.get("/2.0/workspaces/acme/projects/PRJ", headers=bob.auth), 404)

    r = client.put(url, json={"permission": "write"}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["permission"] == "write"
    cloud_error(client.put(url, json={"permission": "admin"}, headers=bob.auth), 403)

    assert client.put(url, json={"permission": "admin"}, headers=alice.auth).status_code == 200
    assert client.put(repo, json={"description": "bob"}, headers=bob.auth).status_code == 200
    # An admin may manage the others' permissions, by uuid or account_id as well.
    carol = world.user("carol")
    me = client.get("/2.0/user", headers=carol.auth).json()
    for ref in (me["uuid"], me["account_id"]):
        r = client.put(f"/2.0/repositories/acme/widget/permissions-config/users/{ref}",
                       json={"permission": "read"}, headers=bob.auth)
        assert r.status_code in (200, 201), r.text
    assert client.get(repo, headers=carol.auth).status_code == 200

    assert client.delete(url, headers=alice.auth).status_code == 204
    cloud_error(client.get(repo, headers=bob.auth), 404)
    cloud_error(client.delete(url, headers=alice.auth), 404)


def test_repository_permission_bad_input(world, client):
    alice, bob = setup(world)
    world.repository(alice, "acme", "widget", "PRJ")
    url = "/2.0/repositories/acme/widget/permissions-config/users/"
    cloud_error(client.put(url + "bob", json={"permission": "create-repo"}, headers=alice.auth),
                400, "permission")
    cloud_error(client.put(url + "bob", json={"permission": None}, headers=alice.auth), 400)
    cloud_error(client.put(url + "nobody", json={"permission": "read"}, headers=alice.auth), 404)
    cloud_error(client.put(url + "{not-a-uuid}", json={"permission": "read"},
                           headers=alice.auth), 404)
    cloud_error(client.delete(url + "nobody", headers=alice.auth), 404)
    cloud_error(client.put(url + "bob", json={"permission": "read"}, headers=bob.auth), 404)
    cloud_error(client.put(url + "bob", json={"permission": "read"}), 401)


def test_paging(world, client):
    alice, _ = setup(world)
    for i in range(12):
        r = client.post("/2.0/workspaces/acme/projects", json={"key": f"P{i:02}", "name": "p"},
                        headers=alice.auth)
        assert r.status_code == 201
    url = "/2.0/workspaces/acme/projects"
    first = client.get(url, headers=alice.auth).json()
    values = cloud_page(first, size=13)
    second = client.get(first["next"].removeprefix("http://testserver"), headers=alice.auth)
    assert second.status_code == 200
    values += cloud_page(second.json(), size=13, page=2)
    assert len({v["key"] for v in values}) == 13
    assert cloud_page(client.get(url + "?pagelen=5&page=3", headers=alice.auth).json(),
                      size=13, pagelen=5, page=3)
    assert len(cloud_page(client.get(url + "?pagelen=100", headers=alice.auth).json(),
                          size=13, pagelen=100)) == 13
    assert client.get(url + "?page=9", headers=alice.auth).json()["values"] == []
    for bad in ("pagelen=0", "pagelen=101", "pagelen=x", "page=0", "page=-1", "page=1.5",
                "page=" + "9" * 400, "page=1000001"):
        cloud_error(client.get(f"{url}?{bad}", headers=alice.auth), 400)
