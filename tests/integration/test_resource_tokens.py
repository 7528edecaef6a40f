"""Repository, project and workspace access tokens through the REST API, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gitward.credentials import codec
from gitward.storage.models import utcnow
from tests.integration.conftest import basic, bearer

PATHS = {
    "repository": "/2.0/repositories/acme/widget/access-tokens",
    "project": "/2.0/workspaces/acme/projects/PRJ/access-tokens",
    "workspace": "/2.0/workspaces/acme/access-tokens",
}
PREFIXES = {"repository": "gwrep_", "project": "gwprj_", "workspace": "gwwsp_"}

# Where a repository stands relative to the token: (workspace/slug, reached by kind).
PLACES = {
    "own repository": ("acme/widget", {"repository", "project", "workspace"}),
    "same project": ("acme/gadget", {"project", "workspace"}),
    "same workspace": ("acme/other", {"workspace"}),
    "other workspace": ("globex/secret", set()),
}


@pytest.fixture
def setup(world):
    """alice owns acme (PRJ: widget, gadget; OTHER: other) and globex (GLX: secret)."""
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.project(alice, "acme", "OTHER")
    world.repository(alice, "acme", "widget", "PRJ")
    world.repository(alice, "acme", "gadget", "PRJ")
    world.repository(alice, "acme", "other", "OTHER")
    world.workspace(alice, "globex")
    world.project(alice, "globex", "GLX")
    world.repository(alice, "globex", "secret", "GLX")
    return alice


def issue(client, account, kind, scopes, **extra):
    r = client.post(PATHS[kind], json={"name": f"{kind} ci", "scopes": scopes, **extra},
                    headers=account.auth)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("kind", list(PATHS))
def test_create_list_revoke(client, setup, kind):
    alice = setup
    body = issue(client, alice, kind, ["repository:write"])
    assert codec.prefix_of(body["token"]) == PREFIXES[kind]
    assert body["type"] == f"{kind}_access_token"
    assert body["scopes"] == ["repository:write"]  # as granted; implications apply at use
    assert body["created_by"]["username"] == "alice"
    listed = client.get(PATHS[kind], headers=alice.auth).json()
    assert listed["size"] == 1 and "token" not in listed["values"][0]
    assert listed["values"][0]["links"]["self"]["href"].startswith("http")
    h = bearer(body["token"])
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    r = client.delete(f"{PATHS[kind]}/{body['id']}", headers=alice.auth)
    assert r.status_code == 204
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 401
    assert client.delete(f"{PATHS[kind]}/{body['id']}", headers=alice.auth).status_code == 404


@pytest.mark.parametrize("kind", list(PATHS))
@pytest.mark.parametrize("place", list(PLACES))
def test_reach(client, setup, kind, place):
    """Inside its resource a token acts; outside, the repository does not exist for it."""
    alice = setup
    secret = issue(client, alice, kind, ["repository"])["token"]
    repo, reached_by = PLACES[place]
    r = client.get(f"/2.0/repositories/{repo}", headers=bearer(secret))
    assert r.status_code == (200 if kind in reached_by else 404)
    r = client.get(f"/2.0/repositories/{repo}", headers=basic("x-token-auth", secret))
    assert r.status_code == (200 if kind in reached_by else 404)


@pytest.mark.parametrize(
    ("kind", "scopes", "message"),
    [
        ("repository", ["project"], "cannot have the scope(s): project"),
        ("repository", ["project:admin"], "project:admin"),
        ("repository", ["bogus"], "Unknown or unsupported scope: bogus"),
        ("project", ["account"], "cannot have the scope(s): account"),
        ("workspace", ["account:write"], "account:write"),
        ("workspace", ["email"], "email"),
        ("workspace", ["team"], "Unknown or unsupported scope: team"),
        ("workspace", ["team:write"], "team:write"),
        ("repository", [], "non-empty list"),
        ("repository", "repository", "non-empty list"),
    ],
)
def test_scope_validation(client, setup, kind, scopes, message):
    alice = setup
    r = client.post(PATHS[kind], json={"name": "t", "scopes": scopes}, headers=alice.auth)
    assert r.status_code == 400
    assert message in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scopes": ["repository"]}, "name is required"),
        ({"name": "t", "scopes": ["repository"], "expires_on": "tomorrow"}, "ISO 8601"),
        ({"name": "t", "scopes": ["repository"], "expires_on": "2001-01-01T00:00:00Z"},
         "in the future"),
    ],
)
def test_other_validation(client, setup, body, message):
    r = client.post(PATHS["repository"], json=body, headers=setup.auth)
    assert r.status_code == 400 and message in r.json()["error"]["message"]


def test_who_may_manage(client, world, setup):
    alice = setup
    bob = world.user("bob")
    # bob can read widget but is no admin: 403 on the repository, 404 where he sees nothing.
    world.grant_repo(alice, "acme", "widget", "bob", "read")
    body = {"name": "t", "scopes": ["repository"]}
    assert client.post(PATHS["repository"], json=body, headers=bob.auth).status_code == 403
    assert client.post(PATHS["project"], json=body, headers=bob.auth).status_code == 404
    assert client.post(PATHS["workspace"], json=body, headers=bob.auth).status_code == 404
    world.grant_repo(alice, "acme", "widget", "bob", "admin")
    assert client.post(PATHS["repository"], json=body, headers=bob.auth).status_code == 201
    # A personal access token of an owner cannot create one.
    pat = client.put(
        "/rest/access-tokens/1.0/users/alice",
        json={"name": "p", "permissions": ["PROJECT_ADMIN", "REPO_ADMIN"]},
        headers=alice.auth,
    ).json()["token"]
    assert client.post(PATHS["repository"], json=body, headers=bearer(pat)).status_code == 403
    assert client.get(PATHS["repository"], headers=bearer(pat)).status_code == 403


@pytest.mark.parametrize("kind", list(PATHS))
def test_tokens_manage_no_credential_and_no_workspace(client, setup, kind):
    alice = setup
    token = issue(client, alice, kind, ["repository:admin", "webhook"])
    h = bearer(token["token"])
    assert client.post(PATHS[kind], json={"name": "t", "scopes": ["repository"]},
                       headers=h).status_code == 403
    assert client.get(PATHS[kind], headers=h).status_code == 403
    assert client.delete(f"{PATHS[kind]}/{token['id']}", headers=h).status_code == 403
    # A person's account is outside every resource token's reach.
    assert client.put("/rest/access-tokens/1.0/users/alice",
                      json={"name": "p", "permissions": ["REPO_READ"]}, headers=h).status_code == 404
    if kind == "workspace":
        r = client.put("/2.0/workspaces/acme/members/alice", json={"role": "owner"}, headers=h)
        assert r.status_code == 403
        r = client.post("/2.0/workspaces/acme/projects", json={"key": "N", "name": "n"},
                        headers=h)
        assert r.status_code == 403


@pytest.mark.parametrize("kind", list(PATHS))
def test_identity_is_the_token(client, setup, kind):
    alice = setup
    token = issue(client, alice, kind, ["repository"])
    me = client.get("/2.0/user", headers=bearer(token["token"])).json()
    assert me["type"] == "app_user"
    assert me["kind"] == f"{kind}_access_token"
    assert me["display_name"] == f"{kind} ci"
    assert me["uuid"] == token["uuid"]


def test_scopes_bound_the_token(client, setup):
    alice = setup
    secret = issue(client, alice, "repository", ["repository"])["token"]
    h = bearer(secret)
    r = client.put("/2.0/repositories/acme/widget", json={"description": "x"}, headers=h)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == (
        "Your credentials lack one or more required privilege scopes: repository:admin"
    )
    r = client.delete("/2.0/repositories/acme/widget", headers=h)
    assert r.status_code == 403 and "repository:delete" in r.json()["error"]["message"]
    admin = issue(client, alice, "repository", ["repository:admin"])["token"]
    # repository:admin implies nothing else: no read.
    r = client.get("/2.0/repositories/acme/widget", headers=bearer(admin))
    assert r.status_code == 403 and "scopes: repository" in r.json()["error"]["message"]
    r = client.put("/2.0/repositories/acme/widget", json={"description": "x"},
                   headers=bearer(admin))
    assert r.status_code == 200


def test_project_token_scopes_on_its_project(client, setup):
    alice = setup
    reader = issue(client, alice, "project", ["project"])["token"]
    assert client.get("/2.0/workspaces/acme/projects/PRJ", headers=bearer(reader)).status_code == 200
    assert client.get("/2.0/workspaces/acme/projects/OTHER",
                      headers=bearer(reader)).status_code == 404
    # project implies repository on its repositories.
    assert client.get("/2.0/repositories/acme/gadget", headers=bearer(reader)).status_code == 200
    r = client.put("/2.0/workspaces/acme/projects/PRJ", json={"name": "n"}, headers=bearer(reader))
    assert r.status_code == 403 and "project:admin" in r.json()["error"]["message"]


def test_outlives_its_creator_not_its_resource(client, world, setup):
    alice = setup
    root = world.user("root", site_admin=True)
    bob = world.user("bob")
    world.grant_repo(alice, "acme", "widget", "bob", "admin")
    token = client.post(PATHS["repository"], json={"name": "b", "scopes": ["repository"]},
                        headers=bob.auth).json()
    h = bearer(token["token"])
    client.delete("/2.0/repositories/acme/widget/permissions-config/users/bob", headers=alice.auth)
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    assert client.delete("/rest/api/1.0/admin/users?name=bob", headers=root.auth).status_code == 200
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    # Deleting the repository deletes its tokens, even one the cache has seen.
    assert client.delete("/2.0/repositories/acme/widget", headers=alice.auth).status_code == 204
    assert client.get("/2.0/user", headers=h).status_code == 401
    world.repository(alice, "acme", "widget", "PRJ")
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 401


def test_expiry(client, runtime, setup):
    alice = setup
    expires = utcnow() + timedelta(days=2)
    token = issue(client, alice, "workspace", ["repository"], expires_on=expires.isoformat())
    h = bearer(token["token"])
    tokens = runtime.resource_tokens
    try:
        tokens.clock = lambda: expires - timedelta(seconds=1)
        assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
        tokens.clock = lambda: expires
        assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 401
    finally:
        tokens.clock = utcnow


def test_basic_needs_x_token_auth(client, setup):
    alice = setup
    secret = issue(client, alice, "repository", ["repository"])["token"]
    assert client.get("/2.0/repositories/acme/widget",
                      headers=basic("alice", secret)).status_code == 401
    # A personal access token names its owner: x-token-auth takes it too (as Bitbucket
    # Server, for Jenkins), acting as its owner; another user's name is still refused.
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "p", "permissions": ["REPO_READ"]},
                     headers=alice.auth).json()["token"]
    r = client.get("/2.0/repositories/acme/widget", headers=basic("x-token-auth", pat))
    assert r.status_code == 200, r.text
    assert client.get("/2.0/repositories/acme/widget",
                      headers=basic("bob", pat)).status_code == 401


def test_listing_in_a_workspace_shows_only_reach(client, setup):
    alice = setup
    secret = issue(client, alice, "project", ["repository"])["token"]
    names = [r["slug"] for r in client.get("/2.0/repositories/acme",
                                           headers=bearer(secret)).json()["values"]]
    assert names == ["gadget", "widget"]
    assert client.get("/2.0/repositories/globex", headers=bearer(secret)).status_code == 404


def test_audit_names_the_token(client, runtime, setup):
    from sqlalchemy import select

    from gitward.storage.models import AuditEvent

    alice = setup
    token = issue(client, alice, "repository", ["repository:admin"])
    r = client.put("/2.0/repositories/acme/widget", json={"description": "by a token"},
                   headers=bearer(token["token"]))
    assert r.status_code == 200
    with runtime.unit_of_work() as store:
        event = store.open().scalars(
            select(AuditEvent).where(AuditEvent.action == "repository.update")
        ).one()
    assert event.actor == f"token:repository_access_token:{token['id']}"
    assert event.actor_user_id is None
    assert event.details["credential"] == "repository_access_token"


def test_concurrent_duplicate_is_a_clear_4xx(client, setup, monkeypatch):
    """Two creations racing: both pass the duplicate check, the unique constraint decides,
    and the loser gets the duplicate answer (400 on Cloud), not a 500."""
    from gitward.storage.repos import Repos

    alice = setup
    # The second request's check ran before the first one's insert committed.
    monkeypatch.setattr(Repos, "workspace_by_slug", lambda self, slug: None)
    r = client.post("/2.0/workspaces", json={"slug": "acme", "name": "again"}, headers=alice.auth)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "That conflicts with something that already exists."
