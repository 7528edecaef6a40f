"""API tokens (`gwapi_`) through the REST API: create, list, revoke; how they are presented;
their Atlassian-named scopes, none implying another; their bound by the owner's live levels;
their mandatory expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gitward.credentials import codec
from gitward.domain.permissions import API_TOKEN_SCOPES, ApiScope
from gitward.storage.models import ApiToken, AuditEvent
from tests.integration.api_checks import cloud_error, cloud_page
from tests.integration.conftest import basic, bearer

API = "/2.0/user/api-tokens"
REPO = "/2.0/repositories/acme/widget"
PUSH = "/acme/widget.git/info/refs?service=git-receive-pack"


def ahead(days: float = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(client, account, scopes, **extra):
    body = {"name": "ci", "scopes": scopes, "expires_on": ahead(), **extra}
    return client.post(API, json=body, headers=account.auth)


def token_of(client, account, scopes, **extra) -> str:
    r = create(client, account, scopes, **extra)
    assert r.status_code == 201, r.text
    secret: str = r.json()["token"]
    return secret


@pytest.fixture
def setup(world):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice


def test_create_shows_the_token_once_and_lists_without_it(client, runtime, setup):
    alice = setup
    r = create(client, alice, ["read:repository:bitbucket", "read:pullrequest:bitbucket"],
               name="deploy")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["type"] == "api_token" and body["name"] == "deploy"
    assert body["token"].startswith("gwapi_") and codec.prefix_of(body["token"]) == "gwapi_"
    assert body["scopes"] == ["read:pullrequest:bitbucket", "read:repository:bitbucket"]
    assert body["expires_on"] and body["created_on"] and body["allowed_ips"] == []
    assert body["links"]["self"]["href"].endswith(f"{API}/{body['id']}")
    listed = cloud_page(client.get(API, headers=alice.auth).json(), size=1)
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0]
    one = client.get(f"{API}/{body['id']}", headers=alice.auth).json()
    assert "token" not in one and one["name"] == "deploy"
    with runtime.unit_of_work() as store:
        row = store.open().scalar(select(ApiToken))
        assert row.token_hash == codec.keyed_hash(runtime.secret_key, body["token"])
        details = store.open().scalars(select(AuditEvent.details)).all()
        actions = store.open().scalars(select(AuditEvent.action)).all()
    assert "api-token.create" in actions
    assert all(body["token"] not in str(d) for d in details)


def test_list_is_a_cloud_page(client, world):
    alice = world.user("alice")
    for n in range(3):
        assert create(client, alice, ["read:user:bitbucket"], name=f"t{n}").status_code == 201
    page = cloud_page(client.get(f"{API}?pagelen=2", headers=alice.auth).json(), size=3,
                      pagelen=2)
    assert [t["name"] for t in page] == ["t2", "t1"]


BAD_BODIES = [
    ({"expires_on": None}, "must expire"),
    ({"expires_on": "tomorrow"}, "ISO 8601"),
    ({"expires_on": 12}, "ISO 8601"),
    ({"expires_on": "2001-01-01T00:00:00Z"}, "in the future"),
    ({"expires_on": "9999-12-31T23:59:59-23:59"}, "ISO 8601"),
    ({"scopes": []}, "non-empty list"),
    ({"scopes": "read:repository:bitbucket"}, "non-empty list"),
    ({"scopes": ["repository"]}, "repository"),
    ({"scopes": ["read:repository:bitbucket", "read:everything:bitbucket"]},
     "read:everything:bitbucket"),
    ({"name": ""}, "name"),
    ({"allowed_ips": ["10.0.0.0/33"]}, "10.0.0.0/33"),
]


def test_bad_bodies_are_400_naming_the_problem(client, world):
    """Each in turn, for one user (the setup is most of such a test's time)."""
    alice = world.user("alice")
    for change, message in BAD_BODIES:
        body = {"name": "ci", "scopes": ["read:repository:bitbucket"], "expires_on": ahead(),
                **change}
        cloud_error(client.post(API, json=body, headers=alice.auth), 400, message)
    assert client.get(API, headers=alice.auth).json()["size"] == 0


def test_expiry_is_at_most_365_days_ahead(client, world):
    alice = world.user("alice")
    body = {"name": "ci", "scopes": ["read:repository:bitbucket"]}
    r = client.post(API, json={**body, "expires_on": ahead(366)}, headers=alice.auth)
    cloud_error(r, 400, "365 days")
    r = client.post(API, json={**body, "expires_on": ahead(364)}, headers=alice.auth)
    assert r.status_code == 201
    # A date alone is midnight UTC; an offset is converted.
    day = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    r = client.post(API, json={**body, "expires_on": day}, headers=alice.auth)
    assert r.status_code == 201 and r.json()["expires_on"].startswith(day)


def test_presented_as_email_username_or_the_git_username(client, setup):
    alice = setup
    token = token_of(client, alice, ["read:repository:bitbucket", "read:user:bitbucket"])
    for name in ("alice@example.com", "ALICE@example.com", "alice", "x-bitbucket-api-token-auth"):
        r = client.get(REPO, headers=basic(name, token))
        assert r.status_code == 200, (name, r.text)
    assert client.get("/2.0/user", headers=basic("alice@example.com", token)).json()[
        "username"] == "alice"
    # Not as a bearer token nor under x-token-auth, and not under someone else's name.
    cloud_error(client.get(REPO, headers=bearer(token)), 401, "email:token")
    cloud_error(client.get(REPO, headers=basic("x-token-auth", token)), 401, "email:token")
    cloud_error(client.get(REPO, headers=basic("bob@example.com", token)), 401, "another user")


def test_a_missing_scope_is_a_403_naming_it_not_a_bad_credential(client, setup):
    alice = setup
    writer = token_of(client, alice, ["write:repository:bitbucket"])
    reader = token_of(client, alice, ["read:repository:bitbucket"])
    # None implies another: write alone does not read, read alone does not write.
    r = client.get(REPO, headers=basic("alice", writer))
    cloud_error(r, 403, "required privilege scopes: read:repository:bitbucket")
    r = client.get(PUSH, headers=basic("x-bitbucket-api-token-auth", reader))
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/plain")
    assert "write:repository:bitbucket" in r.text
    r = client.get("/2.0/user", headers=basic("alice", reader))
    cloud_error(r, 403, "read:user:bitbucket")
    r = client.get("/2.0/workspaces/acme", headers=basic("alice", reader))
    cloud_error(r, 403, "read:workspace:bitbucket")
    # A bad secret is a 401, told apart from the missing scope.
    broken = reader[:-8] + ("A" if reader[-8] != "A" else "B") + reader[-7:]
    assert client.get(REPO, headers=basic("alice", broken)).status_code == 401


def test_no_scope_implies_another():
    """Each action is reached by exactly the scope the table names for it, never by two."""
    seen: dict[object, ApiScope] = {}
    for scope, actions in API_TOKEN_SCOPES.items():
        for action in actions:
            assert action not in seen, (action, scope, seen.get(action))
            seen[action] = scope
    assert set(API_TOKEN_SCOPES) == set(ApiScope)


def test_admin_and_delete_are_separate_scopes(client, setup):
    alice = setup
    admin = token_of(client, alice, ["admin:repository:bitbucket"])
    cloud_error(client.delete(REPO, headers=basic("alice", admin)), 403,
                "delete:repository:bitbucket")
    deleter = token_of(client, alice, ["delete:repository:bitbucket"])
    assert client.delete(REPO, headers=basic("alice", deleter)).status_code == 204


def test_bounded_by_the_owners_live_level(client, world, setup):
    alice = setup
    bob = world.user("bob")
    world.grant_repo(alice, "acme", "widget", "bob", "read")
    token = token_of(client, bob, ["read:repository:bitbucket", "write:repository:bitbucket"])
    assert client.get(REPO, headers=basic("bob", token)).status_code == 200
    r = client.get(PUSH, headers=basic("bob", token))
    assert r.status_code == 403 and "write permission" in r.text
    # Losing access takes effect on the next request.
    r = client.delete(f"{REPO}/permissions-config/users/bob", headers=alice.auth)
    assert r.status_code == 204, r.text
    assert client.get(REPO, headers=basic("bob", token)).status_code == 404


def test_expired_tokens_are_refused(client, runtime, setup):
    alice = setup
    token = token_of(client, alice, ["read:repository:bitbucket"])
    assert client.get(REPO, headers=basic("alice", token)).status_code == 200
    runtime.api_tokens.clock = lambda: datetime.now(UTC) + timedelta(days=31)
    cloud_error(client.get(REPO, headers=basic("alice", token)), 401, "expired")


def test_revoked_on_the_next_request(client, runtime, setup):
    alice = setup
    r = create(client, alice, ["read:repository:bitbucket"])
    token, token_id = r.json()["token"], r.json()["id"]
    assert client.get(REPO, headers=basic("alice", token)).status_code == 200
    assert client.delete(f"{API}/{token_id}", headers=alice.auth).status_code == 204
    cloud_error(client.get(REPO, headers=basic("alice", token)), 401, "revoked")
    cloud_error(client.delete(f"{API}/{token_id}", headers=alice.auth), 404)
    cloud_error(client.delete(f"{API}/nope", headers=alice.auth), 404)
    with runtime.unit_of_work() as store:
        actions = store.open().scalars(select(AuditEvent.action)).all()
    assert "api-token.revoke" in actions


def test_only_an_interactive_login_manages_api_tokens(client, world, setup):
    alice = setup
    token = token_of(client, alice, ["read:repository:bitbucket", "read:user:bitbucket"])
    body = {"name": "more", "scopes": ["read:repository:bitbucket"], "expires_on": ahead()}
    cloud_error(client.post(API, json=body, headers=basic("alice", token)), 403,
                "API tokens cannot be used to create credentials")
    cloud_error(client.get(API, headers=basic("alice", token)), 403)
    # Someone else's tokens are not there at all.
    bob = world.user("bob")
    token_id = client.get(API, headers=alice.auth).json()["values"][0]["id"]
    cloud_error(client.delete(f"{API}/{token_id}", headers=bob.auth), 404)
    cloud_error(client.get(API, headers={}), 401)


def test_an_api_token_cannot_sign_in_to_the_web_interface(client, setup):
    alice = setup
    token = token_of(client, alice, ["read:repository:bitbucket"])
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post("/login", data={"username": "alice", "password": token, "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code != 303


def test_a_deactivated_owner_ends_the_token(client, world, setup):
    alice = setup
    root = world.user("root", site_admin=True)
    token = token_of(client, alice, ["read:repository:bitbucket"])
    assert client.get(REPO, headers=basic("alice", token)).status_code == 200
    r = client.put("/rest/api/1.0/admin/users", json={"name": "alice", "active": False},
                   headers=root.auth)
    assert r.status_code == 200, r.text
    cloud_error(client.get(REPO, headers=basic("alice", token)), 401, "cannot sign in")


def test_revocation_reaches_every_worker(settings, client, setup):
    """A second runtime on the same database stands for another worker or node: it has the
    token cached, and refuses it on the request after the revocation."""
    from gitward.runtime import Runtime
    from gitward.web.app import create_app
    from tests.asgi_client import AppClient

    alice = setup
    r = create(client, alice, ["read:repository:bitbucket"])
    token, token_id = r.json()["token"], r.json()["id"]
    other_runtime = Runtime.open(settings)
    try:
        with AppClient(create_app(other_runtime)) as other:
            assert other.get(REPO, headers=basic("alice", token)).status_code == 200
            assert client.delete(f"{API}/{token_id}", headers=alice.auth).status_code == 204
            assert other.get(REPO, headers=basic("alice", token)).status_code == 401
    finally:
        other_runtime.close()
