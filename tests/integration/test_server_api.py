"""Bitbucket Server REST 1.0: application properties, `latest`, `X-AUSERNAME`, projects,
repositories, the site-wide repository search, users and user permissions, field by field
(shapes: tests/integration/server_checks.py says where each comes from)."""

from __future__ import annotations

import re

import pytest

from tests.integration.api_checks import BASE, server_error
from tests.integration.conftest import basic, bearer
from tests.integration.server_checks import (
    API,
    ok,
    project_shape,
    repository_shape,
    server_page,
    user_shape,
)

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


@pytest.fixture
def site(world, client):
    """root (site admin) made project PRJ (private) with repository `widget`, and PUB
    (public) with `open`; alice is a plain user, bob another."""
    root = world.user("root", site_admin=True)
    alice = world.user("alice")
    bob = world.user("bob")
    ok(client.post(f"{API}/projects", json={"key": "PRJ", "name": "Project"}, headers=root.auth),
       201)
    ok(client.post(f"{API}/projects", json={"key": "PUB", "name": "Public", "public": True},
                   headers=root.auth), 201)
    ok(client.post(f"{API}/projects/PRJ/repos", json={"name": "widget"}, headers=root.auth), 201)
    ok(client.post(f"{API}/projects/PUB/repos", json={"name": "open", "public": True},
                   headers=root.auth), 201)
    return root, alice, bob


def pat(client, user, *permissions):
    r = client.put(f"/rest/access-tokens/1.0/users/{user.username}",
                   json={"name": "t", "permissions": list(permissions)}, headers=user.auth)
    assert r.status_code == 200, r.text
    return r.json()["token"]


# -- application properties, latest, X-AUSERNAME ----------------------------------------------


def test_application_properties(world, client):
    """Renovate's bitbucket-server platform reads `version` (a semver it compares) and the
    X-AUSERNAME header; Bitbucket Server answers anonymous callers too."""
    alice = world.user("alice")
    r = client.get(f"{API}/application-properties")
    body = ok(r)
    assert set(body) == {"version", "buildNumber", "buildDate", "displayName"}
    assert SEMVER.match(body["version"]) and int(body["version"].split(".")[0]) >= 7
    assert body["buildNumber"].isdigit() and body["buildDate"].isdigit()
    assert body["displayName"].startswith("Gitward")
    assert "x-ausername" not in r.headers
    r = client.get(f"{API}/application-properties", headers=alice.auth)
    assert r.headers["x-ausername"] == "alice"
    assert ok(r) == body


def test_latest_is_1_0_everywhere(site, client):
    root, alice, _ = site
    for path in ("/application-properties", "/projects", "/projects/PRJ",
                 "/projects/PRJ/repos/widget", "/repos", "/users/root", "/admin/users"):
        one = client.get(f"/rest/api/1.0{path}", headers=root.auth)
        latest = client.get(f"/rest/api/latest{path}", headers=root.auth)
        assert one.status_code == latest.status_code == 200, (path, latest.text)
        assert one.json() == latest.json(), path
    # Writes too, and the access-tokens module (one alias for the whole surface).
    ok(client.put("/rest/api/latest/projects/PRJ", json={"name": "Renamed"}, headers=root.auth))
    assert ok(client.get(f"{API}/projects/PRJ", headers=root.auth))["name"] == "Renamed"
    token = client.put("/rest/access-tokens/latest/users/alice",
                       json={"name": "t", "permissions": ["REPO_READ"]}, headers=alice.auth)
    assert ok(token)["name"] == "t"
    ok(client.get(f"/rest/access-tokens/latest/users/alice/{token.json()['id']}",
                  headers=alice.auth))
    # Only `latest` is an alias: other versions are unknown paths, in Server's shape.
    server_error(client.get("/rest/api/2.0/projects", headers=root.auth), 404)
    server_error(client.get("/rest/api/latestx/projects", headers=root.auth), 404)
    # The trailing slash is still accepted on the alias.
    assert client.get("/rest/api/latest/projects/", headers=root.auth).status_code == 200


def test_x_ausername_on_every_authenticated_answer(site, client):
    root, alice, _ = site
    token = pat(client, alice, "REPO_READ")
    answers = [
        client.get(f"{API}/projects", headers=alice.auth),
        client.get(f"{API}/projects/PRJ", headers=alice.auth),  # 404: hidden from alice
        client.post(f"{API}/projects", json={"key": 1}, headers=alice.auth),  # 400
        client.get(f"{API}/projects", headers=bearer(token)),
        client.get(f"{API}/projects", headers=basic("x-token-auth", token)),
        client.get("/rest/access-tokens/1.0/users/alice", headers=alice.auth),
    ]
    assert [r.status_code for r in answers] == [200, 404, 400, 200, 200, 200]
    assert all(r.headers["x-ausername"] == "alice" for r in answers)
    # No credential, or a bad one: no name.
    assert "x-ausername" not in client.get(f"{API}/projects").headers
    assert "x-ausername" not in client.get(f"{API}/projects",
                                           headers=basic("alice", "wrong")).headers
    # A resource access token acts as its own service user.
    made = ok(client.put("/rest/access-tokens/1.0/projects/PRJ",
                         json={"name": "ci", "permissions": ["REPO_READ"]}, headers=root.auth))
    r = client.get(f"{API}/projects/PRJ", headers=bearer(made["token"]))
    assert r.headers["x-ausername"] == made["user"]["name"] == f"project-token-{made['id']}"
    # The Cloud surface sends no such header.
    assert "x-ausername" not in client.get("/2.0/user", headers=alice.auth).headers


# -- projects ---------------------------------------------------------------------------------


def test_project_shapes_and_crud(site, client, runtime):
    root, _, _ = site
    r = client.post(f"{API}/projects",
                    json={"key": "new", "name": "New one", "description": "things"},
                    headers=root.auth)
    body = ok(r, 201)
    project_shape(body, "NEW", "New one", description="things")
    # It went into the default workspace, created on first use, with no members.
    default = runtime.settings.default_workspace
    assert default == "default"
    cloud = ok(client.get(f"/2.0/workspaces/{default}/projects/NEW", headers=root.auth))
    assert cloud["key"] == "NEW" and cloud["workspace"]["slug"] == default
    members = ok(client.get(f"/2.0/workspaces/{default}/members", headers=root.auth))
    assert members["values"] == []

    project_shape(ok(client.get(f"{API}/projects/new", headers=root.auth)), "NEW", "New one",
                  description="things")
    values = server_page(ok(client.get(f"{API}/projects", headers=root.auth)), size=3)
    assert [v["key"] for v in values] == ["NEW", "PRJ", "PUB"]
    project_shape(values[2], "PUB", "Public", public=True)
    # Filter by name (any case), and page.
    names = ok(client.get(f"{API}/projects?name=PUBL", headers=root.auth))
    assert [v["key"] for v in server_page(names, size=1)] == ["PUB"]
    first = server_page(ok(client.get(f"{API}/projects?limit=2", headers=root.auth)), size=2,
                        limit=2, last=False)
    rest = server_page(ok(client.get(f"{API}/projects?limit=2&start=2", headers=root.auth)),
                       size=1, limit=2, start=2)
    assert [v["key"] for v in first + rest] == ["NEW", "PRJ", "PUB"]

    # Update: fields not sent stay; the key may change.
    body = ok(client.put(f"{API}/projects/NEW", json={"public": True}, headers=root.auth))
    project_shape(body, "NEW", "New one", public=True, description="things")
    body = ok(client.put(f"{API}/projects/NEW", json={"key": "NEWER", "name": "Newer"},
                         headers=root.auth))
    project_shape(body, "NEWER", "Newer", public=True, description="things")
    server_error(client.get(f"{API}/projects/NEW", headers=root.auth), 404)

    assert client.delete(f"{API}/projects/NEWER", headers=root.auth).status_code == 204
    server_error(client.get(f"{API}/projects/NEWER", headers=root.auth), 404)
    # A project with repositories stays.
    server_error(client.delete(f"{API}/projects/PRJ", headers=root.auth), 400, "repositories")


def test_project_keys_are_unique_site_wide_on_server_too(site, world, client):
    root, alice, _ = site
    world.workspace(alice, "acme")
    world.project(alice, "acme", "ACME")
    # Server's duplicate answer is a 409; the other workspace is not named.
    body = server_error(client.post(f"{API}/projects", json={"key": "acme", "name": "x"},
                                    headers=root.auth), 409, "another workspace")
    assert "acme in" not in str(body).lower()
    server_error(client.post(f"{API}/projects", json={"key": "PRJ", "name": "x"},
                             headers=root.auth), 409, "already exists")
    # A project of any workspace is named by its key alone.
    project_shape(ok(client.get(f"{API}/projects/ACME", headers=alice.auth)), "ACME", "Acme")


def test_who_may_create_projects(site, world, client):
    root, alice, bob = site
    body = {"key": "MINE", "name": "Mine"}
    # A signed-in user who may not: 403 (the default workspace is no secret); anonymous 401.
    server_error(client.post(f"{API}/projects", json=body, headers=alice.auth), 403,
                 "not permitted to create projects")
    server_error(client.post(f"{API}/projects", json=body), 401)
    # No token creates a project, not even the site administrator's.
    token = pat(client, root, "PROJECT_ADMIN", "REPO_ADMIN")
    server_error(client.post(f"{API}/projects", json=body, headers=bearer(token)), 403)
    # Owners of the default workspace may.
    ok(client.put(f"/2.0/workspaces/default/members/{alice.username}", json={"role": "owner"},
                  headers=root.auth))
    project_shape(ok(client.post(f"{API}/projects", json=body, headers=alice.auth), 201),
                  "MINE", "Mine")
    # Members may not.
    ok(client.put(f"/2.0/workspaces/default/members/{bob.username}", json={"role": "member"},
                  headers=root.auth))
    server_error(client.post(f"{API}/projects", json={"key": "B", "name": "b"},
                             headers=bob.auth), 403, "owner")


def test_who_may_change_and_delete_projects(site, client):
    root, alice, bob = site
    ok(client.post(f"{API}/projects", json={"key": "TMP", "name": "Tmp"}, headers=root.auth), 201)
    # Hidden from alice: 404 for reading, changing and deleting; anonymous 401.
    for call in (client.get, client.delete):
        server_error(call(f"{API}/projects/TMP", headers=alice.auth), 404)
        server_error(call(f"{API}/projects/TMP"), 401)
    server_error(client.put(f"{API}/projects/TMP", json={"name": "x"}, headers=alice.auth), 404)
    # Read or write on the project: visible, and a 403 for admin work.
    for permission in ("PROJECT_READ", "PROJECT_WRITE"):
        ok_204(client.put(f"{API}/projects/TMP/permissions/users?name=alice&permission="
                          f"{permission}", headers=root.auth))
        ok(client.get(f"{API}/projects/TMP", headers=alice.auth))
        server_error(client.delete(f"{API}/projects/TMP", headers=alice.auth), 403, "admin")
        server_error(client.put(f"{API}/projects/TMP", json={"name": "x"}, headers=alice.auth),
                     403)
    # A public project is visible to anyone, changed by none of them.
    ok(client.get(f"{API}/projects/PUB"))
    ok(client.get(f"{API}/projects/PUB", headers=bob.auth))
    server_error(client.put(f"{API}/projects/PUB", json={"name": "x"}, headers=bob.auth), 403)
    # Project admins may; a PAT of theirs needs PROJECT_ADMIN.
    ok_204(client.put(f"{API}/projects/TMP/permissions/users?name=alice&permission="
                      "PROJECT_ADMIN", headers=alice.auth), expect=403)
    ok_204(client.put(f"{API}/projects/TMP/permissions/users?name=alice&permission="
                      "PROJECT_ADMIN", headers=root.auth))
    weak = pat(client, alice, "PROJECT_WRITE", "REPO_WRITE")
    server_error(client.delete(f"{API}/projects/TMP", headers=bearer(weak)), 403,
                 "PROJECT_ADMIN")
    strong = pat(client, alice, "PROJECT_ADMIN", "REPO_ADMIN")
    ok(client.put(f"{API}/projects/TMP", json={"description": "d"}, headers=bearer(strong)))
    assert client.delete(f"{API}/projects/TMP", headers=alice.auth).status_code == 204


def ok_204(r, expect: int = 204) -> None:
    assert r.status_code == expect, (r.status_code, r.text)


def test_project_bad_input(site, client):
    root, _, _ = site
    url = f"{API}/projects"
    for body, words in [
        ({"name": "n"}, "key"),
        ({"key": "K"}, "name"),
        ({"key": 5, "name": "n"}, "key"),
        ({"key": "1AB", "name": "n"}, "invalid project key"),
        ({"key": "A-B", "name": "n"}, "invalid project key"),
        ({"key": "K", "name": "n", "public": "yes"}, "public"),
        ({"key": "K", "name": "n", "description": 3}, "description"),
        ({"key": "K", "name": "  "}, "name"),
    ]:
        server_error(client.post(url, json=body, headers=root.auth), 400, words)
    server_error(client.post(url, content=b"{nope", headers={**root.auth,
                 "Content-Type": "application/json"}), 400)
    server_error(client.post(url, json=[1], headers=root.auth), 400)
    server_error(client.put(f"{url}/PRJ", json={"public": 1}, headers=root.auth), 400, "public")
    server_error(client.put(f"{url}/PRJ", json={"key": "bad key"}, headers=root.auth), 400)
    server_error(client.put(f"{url}/PRJ", json={"name": ["x"]}, headers=root.auth), 400, "name")
    server_error(client.get(f"{url}?limit=0", headers=root.auth), 400, "limit")
    server_error(client.get(f"{url}?start=-1", headers=root.auth), 400, "start")
    # offsets the database cannot take
    for start in ("9223372036854775808", "9" * 20):
        for listing in (url, f"{API}/repos"):
            server_error(client.get(f"{listing}?start={start}", headers=root.auth), 400, "start")
    server_error(client.get(f"{url}/%00", headers=root.auth), 404)
    server_error(client.get(f"{url}?name=a%00b", headers=root.auth), 400, "name")


# -- repositories -----------------------------------------------------------------------------


def test_repository_shapes_and_crud(site, client, runtime):
    root, _, _ = site
    body = ok(client.post(f"{API}/projects/prj/repos",
                          json={"name": "My Repo", "scmId": "git", "forkable": True,
                                "description": "about", "defaultBranch": "develop"},
                          headers=root.auth), 201)
    repository_shape(body, "PRJ", "my-repo", "My Repo")
    assert body["description"] == "about"
    # The slug comes from the name, as Bitbucket Server makes it.
    assert body["slug"] == "my-repo"
    got = ok(client.get(f"{API}/projects/PRJ/repos/my-repo", headers=root.auth))
    repository_shape(got, "PRJ", "my-repo", "My Repo")
    assert got["project"]["name"] == "Project"
    # The default branch named at creation is the empty repository's HEAD.
    with runtime.unit_of_work(write=False) as store:
        view = store.repos.repository_view("default", "my-repo")
        assert view is not None
        head = (runtime.git.path_of(view.storage_name) / "HEAD").read_text()
    assert head.strip() == "ref: refs/heads/develop"

    values = server_page(ok(client.get(f"{API}/projects/PRJ/repos", headers=root.auth)), size=2)
    assert [v["slug"] for v in values] == ["my-repo", "widget"]
    repository_shape(values[1], "PRJ", "widget", "widget")
    # Keys are accepted in any case in paths.
    assert ok(client.get(f"{API}/projects/prj/repos/widget", headers=root.auth))["slug"] == "widget"

    body = ok(client.put(f"{API}/projects/PRJ/repos/my-repo",
                         json={"name": "Renamed", "public": True}, headers=root.auth))
    repository_shape(body, "PRJ", "my-repo", "Renamed", public=True)
    # Moved to another project of the same workspace (both live in the default workspace).
    body = ok(client.put(f"{API}/projects/PRJ/repos/my-repo", json={"project": {"key": "PUB"}},
                         headers=root.auth))
    repository_shape(body, "PUB", "my-repo", "Renamed", public=True)
    server_error(client.get(f"{API}/projects/PRJ/repos/my-repo", headers=root.auth), 404)

    assert client.delete(f"{API}/projects/PUB/repos/my-repo", headers=root.auth).status_code == 202
    server_error(client.get(f"{API}/projects/PUB/repos/my-repo", headers=root.auth), 404)
    # Duplicates are a 409.
    server_error(client.post(f"{API}/projects/PRJ/repos", json={"name": "Widget"},
                             headers=root.auth), 409, "already exists")


def test_a_repository_is_found_only_under_its_own_project(site, client):
    root, _, _ = site
    server_error(client.get(f"{API}/projects/PUB/repos/widget", headers=root.auth), 404)
    server_error(client.delete(f"{API}/projects/PUB/repos/widget", headers=root.auth), 404)
    server_error(client.get(f"{API}/projects/NOPE/repos/widget", headers=root.auth), 404)
    server_error(client.get(f"{API}/projects/NOPE/repos", headers=root.auth), 404)
    ok(client.get(f"{API}/projects/PRJ/repos/widget", headers=root.auth))


def test_a_hidden_project_or_repository_answers_as_a_missing_one(site, client):
    """A 404 for what the caller may not see says what it says for what does not exist:
    never the workspace a hidden project lives in, nor that it is there."""
    _, alice, _ = site

    def message(path, method="GET", **kwargs):
        r = client.request(method, f"{API}{path}", headers=alice.auth, **kwargs)
        return server_error(r, 404)["errors"][0]["message"]

    assert message("/projects/PRJ") == "Project PRJ does not exist."
    assert message("/projects/NOPE") == "Project NOPE does not exist."
    assert message("/projects/PRJ/repos") == "Project PRJ does not exist."
    assert message("/projects/PRJ/repos/widget") == "Repository PRJ/widget does not exist."
    assert message("/projects/NOPE/repos/widget") == "Repository NOPE/widget does not exist."
    assert message("/projects/PRJ/repos/widget", "PUT", json={"name": "x"}) == (
        "Repository PRJ/widget does not exist.")
    assert message("/projects/PRJ/repos/widget", "DELETE") == (
        "Repository PRJ/widget does not exist.")
    assert message("/projects/PRJ/permissions/users") == "Project PRJ does not exist."
    for path in ("/projects/PRJ", "/projects/PRJ/repos/widget"):
        assert "default" not in message(path)


def test_who_may_create_and_delete_repositories(site, client):
    root, alice, bob = site
    url = f"{API}/projects/PRJ/repos"
    # Hidden project: 404; anonymous: 401.
    server_error(client.post(url, json={"name": "a"}, headers=alice.auth), 404)
    server_error(client.post(url, json={"name": "a"}), 401)
    server_error(client.get(url, headers=alice.auth), 404)
    # Project write is not enough to create (create-repo is).
    ok_204(client.put(f"{API}/projects/PRJ/permissions/users?name=alice&permission="
                      "PROJECT_WRITE", headers=root.auth))
    server_error(client.post(url, json={"name": "a"}, headers=alice.auth), 403)
    ok(client.put("/2.0/workspaces/default/projects/PRJ/permissions-config/users/alice",
                  json={"permission": "create-repo"}, headers=root.auth))
    repository_shape(ok(client.post(url, json={"name": "a"}, headers=alice.auth), 201),
                     "PRJ", "a", "a")
    # A PAT creates repositories only with PROJECT_ADMIN (as Bitbucket Server).
    weak = pat(client, alice, "PROJECT_WRITE", "REPO_ADMIN")
    server_error(client.post(url, json={"name": "b"}, headers=bearer(weak)), 403,
                 "PROJECT_ADMIN")
    # Deleting needs repository admin: write is a 403, nothing at all a 404.
    ok_204(client.put(f"{API}/projects/PRJ/repos/widget/permissions/users?name=bob&"
                      "permission=REPO_WRITE", headers=root.auth))
    server_error(client.delete(f"{url}/widget", headers=bob.auth), 403, "admin")
    server_error(client.delete(f"{url}/a", headers=bob.auth), 404)
    ok_204(client.put(f"{API}/projects/PRJ/repos/widget/permissions/users?name=bob&"
                      "permission=REPO_ADMIN", headers=root.auth))
    reader = pat(client, bob, "REPO_WRITE")
    server_error(client.delete(f"{url}/widget", headers=bearer(reader)), 403, "REPO_ADMIN")
    assert client.delete(f"{url}/widget", headers=bob.auth).status_code == 202
    # Bob sees the project's repository list only where he may read: now nothing, so 404.
    server_error(client.get(url, headers=bob.auth), 404)


def test_repository_bad_input(site, client):
    root, _, _ = site
    url = f"{API}/projects/PRJ/repos"
    for body, words in [
        ({}, "name"),
        ({"name": 7}, "name"),
        ({"name": "***"}, "letter or digit"),
        ({"name": "x", "scmId": "hg"}, "scmid"),
        ({"name": "x", "public": "no"}, "public"),
        ({"name": "x", "forkable": "no"}, "forkable"),
        ({"name": "x", "defaultBranch": "a b"}, "defaultbranch"),
        ({"name": "x", "defaultBranch": "-x"}, "defaultbranch"),
        ({"name": "x", "defaultBranch": 3}, "defaultbranch"),
        ({"name": "x.git"}, "invalid repository slug"),
    ]:
        server_error(client.post(url, json=body, headers=root.auth), 400, words)
    server_error(client.put(f"{url}/widget", json={"public": "x"}, headers=root.auth), 400)
    server_error(client.put(f"{url}/widget", json={"project": {"key": "NOPE"}},
                            headers=root.auth), 400, "NOPE")
    server_error(client.put(f"{url}/widget", json={"project": "PUB"}, headers=root.auth), 400)


# -- the site-wide search ---------------------------------------------------------------------


def test_site_wide_repositories(site, world, client):
    """Renovate lists `GET /rest/api/1.0/repos?permission=REPO_WRITE&state=AVAILABLE` and
    reads `values[].project.key` and `.slug`."""
    root, alice, bob = site
    world.workspace(alice, "acme")
    world.project(alice, "acme", "ACME", name="Acme things")
    world.repository(alice, "acme", "tool", "ACME")
    world.repository(alice, "acme", "site-pub", "ACME", private=False)

    def slugs(headers, query=""):
        body = ok(client.get(f"{API}/repos{query}", headers=headers))
        return [(v["project"]["key"], v["slug"]) for v in body["values"]]

    everything = [("ACME", "site-pub"), ("ACME", "tool"), ("PRJ", "widget"), ("PUB", "open")]
    assert slugs(root.auth) == everything
    assert slugs(alice.auth) == [("ACME", "site-pub"), ("ACME", "tool"), ("PUB", "open")]
    assert slugs(bob.auth) == [("ACME", "site-pub"), ("PUB", "open")]
    assert slugs({}) == [("ACME", "site-pub"), ("PUB", "open")]
    # permission: what the caller may do at that level.
    assert slugs(alice.auth, "?permission=REPO_WRITE&state=AVAILABLE") == [
        ("ACME", "site-pub"), ("ACME", "tool")]
    assert slugs(bob.auth, "?permission=REPO_WRITE") == []
    world.grant_repo(alice, "acme", "tool", "bob", "write")
    assert slugs(bob.auth, "?permission=REPO_WRITE") == [("ACME", "tool")]
    assert slugs(bob.auth, "?permission=REPO_ADMIN") == []
    # A PAT's own bound counts: REPO_READ lists nothing for REPO_WRITE.
    token = pat(client, alice, "REPO_READ")
    assert slugs(bearer(token), "?permission=REPO_WRITE") == []
    assert slugs(bearer(token)) == [("ACME", "site-pub"), ("ACME", "tool"), ("PUB", "open")]
    # A project access token sees its project only.
    made = ok(client.post("/2.0/workspaces/acme/projects/ACME/access-tokens",
                          json={"name": "ci", "scopes": ["repository"]}, headers=alice.auth), 201)
    assert slugs(bearer(made["token"])) == [("ACME", "site-pub"), ("ACME", "tool")]
    # Filters: names contained (any case), visibility, state.
    assert slugs(root.auth, "?name=OO") == [("ACME", "tool")]
    assert slugs(root.auth, "?projectname=acme") == [("ACME", "site-pub"), ("ACME", "tool")]
    assert slugs(root.auth, "?visibility=public") == [("ACME", "site-pub"), ("PUB", "open")]
    assert slugs(root.auth, "?visibility=PRIVATE") == [("ACME", "tool"), ("PRJ", "widget")]
    assert slugs(root.auth, "?state=OFFLINE") == []
    assert slugs(root.auth, "?name=%25") == []  # LIKE's wildcards match themselves
    # Paging.
    first = server_page(ok(client.get(f"{API}/repos?limit=3", headers=root.auth)), size=3,
                        limit=3, last=False)
    rest = server_page(ok(client.get(f"{API}/repos?limit=3&start=3", headers=root.auth)),
                       size=1, limit=3, start=3)
    assert [(v["project"]["key"], v["slug"]) for v in first + rest] == everything
    repository_shape(rest[0], "PUB", "open", "open", public=True)
    # Bad input.
    for query, words in [("?permission=REPO_EAT", "permission"), ("?state=GONE", "state"),
                         ("?visibility=secret", "visibility"), ("?limit=x", "limit")]:
        server_error(client.get(f"{API}/repos{query}", headers=root.auth), 400, words)


# -- users ------------------------------------------------------------------------------------


def test_users(site, client):
    """Renovate reads `GET /rest/api/1.0/users/{its own name}`; atlassian-python-api's
    `get_users(filter)` reads `/users?filter=`."""
    root, alice, _ = site
    user_shape(ok(client.get(f"{API}/users/alice", headers=alice.auth)), "alice")
    user_shape(ok(client.get(f"{API}/users/ALICE", headers=alice.auth)), "alice")
    # Other accounts are not revealed to non-administrators; administrators see them all.
    server_error(client.get(f"{API}/users/bob", headers=alice.auth), 404)
    server_error(client.get(f"{API}/users/nobody", headers=alice.auth), 404)
    server_error(client.get(f"{API}/users/bob"), 401)
    user_shape(ok(client.get(f"{API}/users/bob", headers=root.auth)), "bob")
    # A PAT reads its owner's account.
    user_shape(ok(client.get(f"{API}/users/alice", headers=bearer(pat(client, alice,
                                                                       "REPO_READ")))), "alice")

    values = server_page(ok(client.get(f"{API}/users", headers=root.auth)), size=3)
    assert [v["name"] for v in values] == ["alice", "bob", "root"]
    assert [v["name"] for v in ok(client.get(f"{API}/users?filter=B",
                                             headers=root.auth))["values"]] == ["bob"]
    assert [v["name"] for v in ok(client.get(f"{API}/users?filter=example.com",
                                             headers=root.auth))["values"]] == [
        "alice", "bob", "root"]
    assert [v["name"] for v in ok(client.get(f"{API}/users",
                                             headers=alice.auth))["values"]] == ["alice"]
    assert ok(client.get(f"{API}/users?filter=bob", headers=alice.auth))["values"] == []
    server_error(client.get(f"{API}/users"), 401)
    page = server_page(ok(client.get(f"{API}/users?limit=2", headers=root.auth)), size=2,
                       limit=2, last=False)
    user_shape(page[0], "alice")

    # The admin listing: site administrators only.
    admin = server_page(ok(client.get(f"{API}/admin/users?filter=R", headers=root.auth)),
                        size=1)
    assert [v["name"] for v in admin] == ["root"]
    assert len(ok(client.get(f"{API}/admin/users", headers=root.auth))["values"]) == 3
    server_error(client.get(f"{API}/admin/users", headers=alice.auth), 403)
    server_error(client.get(f"{API}/admin/users"), 401)
    # A token never administers the site.
    server_error(client.get(f"{API}/admin/users",
                            headers=bearer(pat(client, root, "REPO_ADMIN"))), 403)
    # Every link handed out answers.
    href = admin[0]["links"]["self"][0]["href"]
    assert href.startswith(BASE)
    assert client.get(href.removeprefix(BASE), headers=root.auth).status_code == 200


# -- user permissions -------------------------------------------------------------------------


def test_project_permissions(site, client):
    """atlassian-python-api: `project_grant_user_permissions` (PUT ?permission&name),
    `project_users` (GET, values[].user/.permission), `project_remove_user_permissions`
    (DELETE ?name)."""
    root, alice, bob = site
    url = f"{API}/projects/PRJ/permissions/users"
    assert server_page(ok(client.get(url, headers=root.auth)), size=0) == []
    ok_204(client.put(f"{url}?name=alice&name=bob&permission=PROJECT_WRITE", headers=root.auth))
    values = server_page(ok(client.get(url, headers=root.auth)), size=2)
    assert [(v["user"]["name"], v["permission"]) for v in values] == [
        ("alice", "PROJECT_WRITE"), ("bob", "PROJECT_WRITE")]
    assert set(values[0]) == {"user", "permission"}
    user_shape(values[0]["user"], "alice")
    # The table of levels: each Server name sets a Gitward grant and reads back as itself.
    for permission, grant in [("PROJECT_READ", "read"), ("PROJECT_ADMIN", "admin"),
                              ("PROJECT_WRITE", "write")]:
        ok_204(client.put(f"{url}?name=alice&permission={permission}", headers=root.auth))
        cloud = ok(client.get("/2.0/workspaces/default/projects/PRJ", headers=alice.auth))
        assert cloud["key"] == "PRJ"
        got = ok(client.get(f"{url}?filter=ali", headers=root.auth))["values"]
        assert [(v["user"]["name"], v["permission"]) for v in got] == [("alice", permission)]
        assert _project_grant(client, root, "alice") == grant
    # Gitward's create-repo has no Server name: it shows as PROJECT_WRITE.
    ok(client.put("/2.0/workspaces/default/projects/PRJ/permissions-config/users/bob",
                  json={"permission": "create-repo"}, headers=root.auth))
    got = ok(client.get(f"{url}?filter=bob", headers=root.auth))["values"]
    assert [v["permission"] for v in got] == ["PROJECT_WRITE"]

    # Who may: project admins and site administrators; others 403, hidden 404, anonymous 401.
    server_error(client.get(url, headers=alice.auth), 403)
    server_error(client.put(f"{url}?name=bob&permission=PROJECT_ADMIN", headers=alice.auth), 403)
    ok_204(client.put(f"{url}?name=alice&permission=PROJECT_ADMIN", headers=root.auth))
    ok(client.get(url, headers=alice.auth))
    ok_204(client.put(f"{url}?name=bob&permission=PROJECT_READ", headers=alice.auth))
    outsider = f"{API}/projects/PRJ/permissions/users"
    ok_204(client.delete(f"{outsider}?name=bob", headers=alice.auth))
    server_error(client.get(url, headers=bob.auth), 404)
    server_error(client.get(url), 401)
    # Removing what is not there, and bad input.
    server_error(client.delete(f"{url}?name=bob", headers=root.auth), 404)
    server_error(client.delete(url, headers=root.auth), 400, "name")
    server_error(client.put(f"{url}?permission=PROJECT_READ", headers=root.auth), 400, "name")
    server_error(client.put(f"{url}?name=bob", headers=root.auth), 400, "permission")
    server_error(client.put(f"{url}?name=bob&permission=REPO_READ", headers=root.auth), 400,
                 "PROJECT_READ")
    server_error(client.put(f"{url}?name=nobody&permission=PROJECT_READ", headers=root.auth),
                 404, "nobody")
    ok_204(client.delete(f"{url}?name=alice", headers=root.auth))
    server_error(client.get(f"{API}/projects/PRJ", headers=alice.auth), 404)


def _project_grant(client, root, username):
    for v in ok(client.get(f"{API}/projects/PRJ/permissions/users?filter={username}",
                           headers=root.auth))["values"]:
        if v["user"]["name"] == username:
            from gitward.domain.permissions import ResourceKind
            from gitward.domain.server_permissions import grant_of

            return grant_of(ResourceKind.PROJECT, v["permission"])
    return None


def test_repository_permissions(site, client):
    root, alice, bob = site
    url = f"{API}/projects/PRJ/repos/widget/permissions/users"
    ok_204(client.put(f"{url}?name=alice&permission=REPO_READ", headers=root.auth))
    ok(client.get(f"{API}/projects/PRJ/repos/widget", headers=alice.auth))
    server_error(client.put(f"{API}/projects/PRJ/repos/widget", json={"name": "x"},
                            headers=alice.auth), 403)
    server_error(client.get(url, headers=alice.auth), 403)
    ok_204(client.put(f"{url}?name=alice&permission=REPO_ADMIN", headers=root.auth))
    values = server_page(ok(client.get(url, headers=alice.auth)), size=1)
    assert [(v["user"]["name"], v["permission"]) for v in values] == [("alice", "REPO_ADMIN")]
    ok_204(client.put(f"{url}?name=bob&permission=REPO_WRITE", headers=alice.auth))
    assert [v["permission"] for v in ok(client.get(f"{url}?filter=bob",
                                                   headers=alice.auth))["values"]] == ["REPO_WRITE"]
    server_error(client.get(url, headers=bob.auth), 403)
    server_error(client.put(f"{url}?name=bob&permission=PROJECT_READ", headers=root.auth), 400)
    # Only under its own project.
    server_error(client.get(f"{API}/projects/PUB/repos/widget/permissions/users",
                            headers=root.auth), 404)
    ok_204(client.delete(f"{url}?name=bob", headers=alice.auth))
    server_error(client.get(f"{API}/projects/PRJ/repos/widget", headers=bob.auth), 404)
