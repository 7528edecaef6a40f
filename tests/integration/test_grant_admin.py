"""Only interactive credentials grant lasting power, over REST: a leaked repository or project
token with admin scope, or a PAT with REPO_ADMIN / PROJECT_ADMIN, may grant read and write
but not admin, and never makes a workspace owner; the account password may.

Bodies are Bitbucket Cloud's `permissions-config/users/{user}` `{"permission": ...}` and
workspace members `{"role": ...}` as the rest of this suite uses them."""

from __future__ import annotations

import pytest

from tests.integration.api_checks import cloud_error
from tests.integration.conftest import basic, bearer

REPO_PERM = "/2.0/repositories/acme/widget/permissions-config/users/bob"
PROJECT_PERM = "/2.0/workspaces/acme/projects/PRJ/permissions-config/users/bob"


@pytest.fixture
def setup(world):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice, bob


def token(client, alice, path, scopes):
    r = client.post(path, json={"name": "leaked", "scopes": scopes}, headers=alice.auth)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def pat(client, alice, permissions):
    r = client.put("/rest/access-tokens/1.0/users/alice",
                   json={"name": "leaked", "permissions": permissions}, headers=alice.auth)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def bob_can_mint(client, bob):
    """What lasting power would mean: bob creating a repository token of his own."""
    r = client.post("/2.0/repositories/acme/widget/access-tokens",
                    json={"name": "mine", "scopes": ["repository"]}, headers=bob.auth)
    return r.status_code == 201


def test_repository_token_cannot_grant_admin(client, setup):
    alice, bob = setup
    leaked = token(client, alice, "/2.0/repositories/acme/widget/access-tokens",
                   ["repository:admin"])
    r = client.put(REPO_PERM, json={"permission": "admin"}, headers=bearer(leaked))
    cloud_error(r, 403, "grant admin permission")
    assert not bob_can_mint(client, bob)
    r = client.put(REPO_PERM, json={"permission": "write"}, headers=bearer(leaked))
    assert r.status_code in (200, 201), r.text
    # The account password may.
    r = client.put(REPO_PERM, json={"permission": "admin"}, headers=alice.auth)
    assert r.status_code in (200, 201), r.text
    assert bob_can_mint(client, bob)


def test_project_token_cannot_grant_admin(client, setup):
    alice, bob = setup
    leaked = token(client, alice, "/2.0/workspaces/acme/projects/PRJ/access-tokens",
                   ["project:admin", "repository:admin"])
    for path in (PROJECT_PERM, REPO_PERM):
        cloud_error(client.put(path, json={"permission": "admin"}, headers=bearer(leaked)), 403,
                    "grant admin permission")
    r = client.put(PROJECT_PERM, json={"permission": "create-repo"}, headers=bearer(leaked))
    assert r.status_code in (200, 201), r.text
    assert not bob_can_mint(client, bob)


def test_personal_token_cannot_grant_admin(client, setup):
    alice, _ = setup
    leaked = pat(client, alice, ["PROJECT_ADMIN", "REPO_ADMIN"])
    for headers in (bearer(leaked), basic("alice", leaked)):
        for path in (PROJECT_PERM, REPO_PERM):
            cloud_error(client.put(path, json={"permission": "admin"}, headers=headers), 403,
                        "grant admin permission")
        r = client.put(REPO_PERM, json={"permission": "read"}, headers=headers)
        assert r.status_code in (200, 201), r.text


def test_only_a_person_makes_a_workspace_owner(client, setup):
    alice, bob = setup
    leaked = token(client, alice, "/2.0/workspaces/acme/access-tokens",
                   ["project:admin", "repository:admin"])
    r = client.put("/2.0/workspaces/acme/members/bob", json={"role": "owner"},
                   headers=bearer(leaked))
    assert r.status_code == 403, r.text
    r = client.put("/2.0/workspaces/acme/members/bob", json={"role": "owner"},
                   headers=alice.auth)
    assert r.status_code in (200, 201), r.text
    assert bob_can_mint(client, bob)
