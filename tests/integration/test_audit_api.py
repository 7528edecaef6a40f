"""The audit log's two APIs, on both databases: a scripted sequence of actions lists exactly
its events, in order, for the site (site admins) and for a workspace (its owners); filters,
paging, who may read it, and that nothing in it is a secret or can be changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from gitward.credentials import codec
from tests.integration.api_checks import cloud_error, server_error
from tests.integration.conftest import basic, bearer
from tests.integration.oauth_helpers import TOKEN, create_consumer, oauth_client

SITE = "/rest/audit/1.0/events"
ACME = "/2.0/workspaces/acme/audit"


@pytest.fixture
def script(world, client):
    """The actions, through the public API; returns what the test needs to check them."""
    admin = world.user("root", site_admin=True)
    alice = world.user("alice")
    bob = world.user("bob")
    secrets = []
    world.workspace(alice, "acme")                                      # workspace.create
    world.workspace(bob, "globex")                                      # workspace.create
    world.project(alice, "acme", "PRJ")                                 # project.create
    world.repository(alice, "acme", "widget", "PRJ")                    # repository.create
    world.grant_repo(alice, "acme", "widget", "bob", "write")           # repository.permission.set
    r = client.post("/2.0/repositories/acme/widget/access-tokens",     # repository-token.create
                    json={"name": "ci", "scopes": ["repository"]}, headers=alice.auth)
    assert r.status_code == 201, r.text
    token = r.json()
    secrets.append(token["token"])
    r = client.put("/rest/access-tokens/1.0/users/bob",                 # pat.create
                   json={"name": "b", "permissions": ["REPO_READ"]}, headers=bob.auth)
    secrets.append(r.json()["token"])
    wrong = basic("alice", "not her password")
    assert client.get("/2.0/user", headers=wrong).status_code == 401   # auth.failed
    r = client.delete(                                                   # repository-token.revoke
        f"/2.0/repositories/acme/widget/access-tokens/{token['id']}", headers=alice.auth)
    assert r.status_code == 204, r.text
    r = client.delete("/2.0/repositories/acme/widget/permissions-config/users/bob",
                      headers=alice.auth)                               # repository.permission.remove
    assert r.status_code == 204, r.text
    consumer = create_consumer(client, alice)                           # oauth-consumer.create
    oauth = oauth_client(client, consumer).fetch_token(                 # oauth.token
        TOKEN, grant_type="client_credentials")
    secrets += [consumer["secret"], oauth["access_token"]]
    assert client.post("/rest/revocation/1.0/tokens",                   # credential.revoke-leaked
                       json={"tokens": [secrets[1]]}).status_code == 200
    return admin, alice, bob, secrets


SITE_ACTIONS = [
    ("workspace.create", "user:alice", "workspace:acme"),
    ("workspace.create", "user:bob", "workspace:globex"),
    ("project.create", "user:alice", "project:acme/PRJ"),
    ("repository.create", "user:alice", "repository:acme/widget"),
    ("repository.permission.set", "user:alice", "repository:acme/widget"),
    ("repository-token.create", "user:alice", "repository:acme/widget"),
    ("pat.create", "user:bob", "user:bob"),
    ("auth.failed", "anonymous", None),
    ("repository-token.revoke", "user:alice", "repository:acme/widget"),
    ("repository.permission.remove", "user:alice", "repository:acme/widget"),
    ("oauth-consumer.create", "user:alice", "workspace:acme"),
    ("oauth.token", "oauth-consumer:1", "oauth-consumer:1"),
    ("credential.revoke-leaked", "anonymous", "user:bob"),
]


def _site(client, admin, **params):
    r = client.get(SITE, params=params, headers=admin.auth)
    assert r.status_code == 200, r.text
    return r.json()


def _actions(values, with_target=True):
    return [
        (v["action"], v["actor"], v["target"] if with_target else None) for v in values
    ]


def test_the_logs_of_a_scripted_sequence(client, runtime, script):
    """One script (it is the slow part), every reading of it."""
    _the_site_log_lists_exactly_the_script_in_order(client, script)
    _the_workspace_log_lists_exactly_its_part_in_order(client, script)
    _no_event_holds_a_secret(client, runtime, script)
    _filters(client, script)
    _paging(client, script)
    _no_api_changes_or_deletes_an_event(client, script)


def _the_site_log_lists_exactly_the_script_in_order(client, script):
    admin, *_ = script
    page = _site(client, admin, limit=100)
    assert page["isLastPage"] is True and page["start"] == 0
    got = [(a, actor, t if want is not None else None)
           for (a, actor, t), (_, _, want) in zip(_actions(page["values"]), SITE_ACTIONS,
                                                    strict=False)]
    assert got == [(a, actor, t) for a, actor, t in SITE_ACTIONS]
    assert len(page["values"]) == len(SITE_ACTIONS)
    ids = [v["id"] for v in page["values"]]
    assert ids == sorted(ids)
    first = page["values"][0]
    assert set(first) == {"id", "timestamp", "action", "actor", "target", "clientIp", "details"}
    assert isinstance(first["timestamp"], int)


def _the_workspace_log_lists_exactly_its_part_in_order(client, script):
    _, alice, *_ = script
    r = client.get(ACME, headers=alice.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = [row for row in SITE_ACTIONS
                if row[2] is not None and (row[2] in ("workspace:acme", "oauth-consumer:1")
                                           or row[2].startswith(("project:acme/",
                                                                 "repository:acme/")))]
    assert body["size"] == len(expected)
    assert _actions(body["values"]) == expected
    one = body["values"][0]
    assert one["type"] == "audit_event"
    again = client.get(one["links"]["self"]["href"], headers=alice.auth)
    assert again.status_code == 200 and again.json() == one
    # Another workspace's event is not found through this one.
    site = _site(client, script[0], action="workspace.create", actor="bob")["values"]
    other = client.get(f"{ACME}/{site[0]['id']}", headers=alice.auth)
    cloud_error(other, 404)


def _no_event_holds_a_secret(client, runtime, script):
    admin, _, _, secrets = script
    everything = json.dumps(_site(client, admin, limit=1000))
    for secret in secrets:
        assert secret not in everything
        assert codec.keyed_hash(runtime.secret_key, secret) not in everything
    assert "not her password" not in everything


def _filters(client, script):
    admin, *_ = script
    by = _site(client, admin, actor="bob")["values"]
    assert _actions(by) == [("workspace.create", "user:bob", "workspace:globex"),
                            ("pat.create", "user:bob", "user:bob")]
    assert _site(client, admin, actor="user:bob")["values"] == by
    created = _site(client, admin, action="workspace.create")["values"]
    assert [v["target"] for v in created] == ["workspace:acme", "workspace:globex"]
    on = _site(client, admin, target="repository:acme/widget")["values"]
    assert len(on) == 5
    everything = _site(client, admin)["values"]
    middle = everything[4]["timestamp"]
    later = _site(client, admin, **{"from": str(middle)})["values"]
    assert later and all(v["timestamp"] >= middle for v in later)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _site(client, admin, **{"from": soon})["values"] == []
    assert len(_site(client, admin, to=soon)["values"]) == len(everything)
    assert _site(client, admin, to="2000-01-01")["values"] == []
    for bad in ({"from": "yesterday"}, {"to": "2026-13-40"}, {"from": soon, "to": "2000-01-01"},
                {"actor": "x" * 300}, {"actor": "a\x00b"}, {"target": "x\x00"},
                {"action": "pat.\nrevoke"}):
        server_error(client.get(SITE, params=bad, headers=admin.auth), 400)
    r = client.get(ACME, params={"from": "nope"}, headers=script[1].auth)
    cloud_error(r, 400, "from must be")
    acme_bob = client.get(ACME, params={"actor": "bob"}, headers=script[1].auth).json()
    assert acme_bob["values"] == []  # bob did nothing in acme


def _paging(client, script):
    admin, alice, *_ = script
    first = _site(client, admin, limit=4)
    assert (first["size"], first["isLastPage"], first["nextPageStart"]) == (4, False, 4)
    second = _site(client, admin, limit=4, start=4)
    assert second["values"][0]["id"] > first["values"][-1]["id"]
    cloud = client.get(ACME, params={"pagelen": 2}, headers=alice.auth).json()
    assert len(cloud["values"]) == 2 and "next" in cloud
    following = client.get(cloud["next"], headers=alice.auth).json()
    assert following["values"][0]["id"] > cloud["values"][-1]["id"]


def test_who_may_read(client, script):
    admin, alice, bob, _ = script
    server_error(client.get(SITE), 401)
    server_error(client.get(SITE, headers=alice.auth), 403)
    pat = client.put("/rest/access-tokens/1.0/users/root",
                     json={"name": "a", "permissions": ["REPO_ADMIN", "PROJECT_ADMIN"]},
                     headers=admin.auth).json()["token"]
    server_error(client.get(SITE, headers=bearer(pat)), 403)  # no token administers the site
    cloud_error(client.get(ACME), 401)
    cloud_error(client.get(ACME, headers=bob.auth), 404)      # not a member: not seen
    world_member = client.put("/2.0/workspaces/acme/members/bob", json={"role": "member"},
                              headers=alice.auth)
    assert world_member.status_code in (200, 201), world_member.text
    cloud_error(client.get(ACME, headers=bob.auth), 403)      # a member, not an owner
    # Site admins administer every workspace, and read the whole log anyway.
    assert client.get(ACME, headers=admin.auth).status_code == 200


def _no_api_changes_or_deletes_an_event(client, script):
    admin, alice, *_ = script
    some = _site(client, admin)["values"][0]["id"]
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert client.request(method, SITE, headers=admin.auth).status_code == 405
        assert client.request(method, f"{ACME}/{some}", headers=alice.auth).status_code == 405
    assert _site(client, admin)["values"][0]["id"] == some
