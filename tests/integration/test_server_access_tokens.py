"""Bitbucket Server's HTTP access tokens of projects and repositories
(`/rest/access-tokens/1.0/projects/{key}[/repos/{slug}][/{tokenId}]`): the same objects as
the Cloud API's project and repository access tokens, with Server permissions as scopes.

Shape: Bitbucket Server's access-tokens REST documentation (`id`, `name`, `createdDate`,
`permissions`, `expiryDays`, `expiryDate`, `token` in the creation answer only, `user`), as
for personal tokens."""

from __future__ import annotations

import pytest

from gitward.domain.permissions import PatPermission, Scope
from gitward.domain.server_permissions import TOKEN_SCOPES
from tests.integration.api_checks import server_error
from tests.integration.conftest import basic, bearer
from tests.integration.server_checks import API, ok

TOKENS = "/rest/access-tokens/1.0/projects"


@pytest.fixture
def site(world, client):
    root = world.user("root", site_admin=True)
    alice = world.user("alice")
    ok(client.post(f"{API}/projects", json={"key": "PRJ", "name": "Project"}, headers=root.auth),
       201)
    ok(client.post(f"{API}/projects", json={"key": "OTHER", "name": "Other"}, headers=root.auth),
       201)
    for key, name in (("PRJ", "widget"), ("PRJ", "gadget"), ("OTHER", "thing")):
        ok(client.post(f"{API}/projects/{key}/repos", json={"name": name}, headers=root.auth), 201)
    return root, alice


def _shape(body, *, secret: bool, permissions, expiry: int | None = None):
    fields = {"id", "name", "createdDate", "permissions", "user", "createdBy", "allowedIps",
              "refPatterns", "fastForwardOnly"}
    if secret:
        fields.add("token")
    if expiry is not None:
        fields |= {"expiryDays", "expiryDate"}
    # Once used: when and from where, as for personal tokens.
    assert set(body) - {"lastAuthenticated", "lastUsedIp"} == fields, body
    assert body["id"].isdigit()
    assert isinstance(body["createdDate"], int) and body["createdDate"] > 1_600_000_000_000
    assert body["permissions"] == permissions
    assert body["user"]["type"] == "SERVICE" and body["user"]["displayName"] == body["name"]
    if expiry is not None:
        assert body["expiryDays"] == expiry
        assert body["expiryDate"] - body["createdDate"] == pytest.approx(expiry * 86_400_000,
                                                                         abs=5_000)


def test_project_token_life(site, client):
    root, _ = site
    made = ok(client.put(f"{TOKENS}/PRJ", json={"name": "ci", "permissions": [
        "PROJECT_READ", "REPO_WRITE"], "expiryDays": 30}, headers=root.auth))
    # PROJECT_READ + REPO_WRITE grant what PROJECT_WRITE + REPO_WRITE grant: read back so.
    _shape(made, secret=True, permissions=["PROJECT_WRITE", "REPO_WRITE"], expiry=30)
    assert made["token"].startswith("gwprj_")
    assert made["createdBy"] == "root"
    token_id = made["id"]

    listed = ok(client.get(f"{TOKENS}/PRJ", headers=root.auth))
    assert [v["id"] for v in listed["values"]] == [token_id]
    _shape(listed["values"][0], secret=False, permissions=["PROJECT_WRITE", "REPO_WRITE"],
           expiry=30)
    assert listed["isLastPage"] is True and listed["limit"] == 25
    _shape(ok(client.get(f"{TOKENS}/PRJ/{token_id}", headers=root.auth)), secret=False,
           permissions=["PROJECT_WRITE", "REPO_WRITE"], expiry=30)

    # The same object as the Cloud API's project token.
    cloud = ok(client.get("/2.0/workspaces/default/projects/PRJ/access-tokens",
                          headers=root.auth))
    assert [str(v["id"]) for v in cloud["values"]] == [token_id]
    assert sorted(cloud["values"][0]["scopes"]) == sorted(
        s.value for s in TOKEN_SCOPES[PatPermission.PROJECT_READ]
        | TOKEN_SCOPES[PatPermission.REPO_WRITE])

    secret = made["token"]
    # It works inside its project: push-level scopes on its repositories, not beyond.
    ok(client.get(f"{API}/projects/PRJ/repos/widget", headers=bearer(secret)))
    ok(client.get(f"{API}/projects/PRJ/repos/widget", headers=basic("x-token-auth", secret)))
    server_error(client.get(f"{API}/projects/OTHER/repos/thing", headers=bearer(secret)), 404)
    server_error(client.put(f"{API}/projects/PRJ/repos/widget", json={"name": "x"},
                            headers=bearer(secret)), 403, "repository:admin")

    # Modify: name and permissions; fields not sent stay; expiry cannot change.
    body = ok(client.post(f"{TOKENS}/PRJ/{token_id}", json={"permissions": ["REPO_ADMIN"]},
                          headers=root.auth))
    _shape(body, secret=False, permissions=["REPO_ADMIN"], expiry=30)
    assert body["name"] == "ci"
    # Wider scopes count from its next request.
    ok(client.put(f"{API}/projects/PRJ/repos/widget", json={"description": "d"},
                  headers=bearer(secret)))
    body = ok(client.post(f"{TOKENS}/PRJ/{token_id}", json={"name": "renamed"},
                          headers=root.auth))
    assert body["name"] == "renamed" and body["permissions"] == ["REPO_ADMIN"]
    server_error(client.post(f"{TOKENS}/PRJ/{token_id}", json={"expiryDays": 5},
                             headers=root.auth), 400, "expiry")

    assert client.delete(f"{TOKENS}/PRJ/{token_id}", headers=root.auth).status_code == 204
    server_error(client.get(f"{API}/projects/PRJ", headers=bearer(secret)), 401)
    server_error(client.get(f"{TOKENS}/PRJ/{token_id}", headers=root.auth), 404)
    server_error(client.delete(f"{TOKENS}/PRJ/{token_id}", headers=root.auth), 404)


def test_repository_token_life(site, client):
    root, _ = site
    url = f"{TOKENS}/PRJ/repos/widget"
    made = ok(client.put(url, json={"name": "deploy", "permissions": ["REPO_READ"]},
                         headers=root.auth))
    _shape(made, secret=True, permissions=["REPO_READ"])
    assert made["token"].startswith("gwrep_")
    secret = made["token"]
    ok(client.get(f"{API}/projects/PRJ/repos/widget", headers=bearer(secret)))
    server_error(client.get(f"{API}/projects/PRJ/repos/gadget", headers=bearer(secret)), 404)
    server_error(client.delete(f"{API}/projects/PRJ/repos/widget", headers=bearer(secret)), 403)
    # Listed here and by the Cloud API; not on the project's list.
    assert [v["id"] for v in ok(client.get(url, headers=root.auth))["values"]] == [made["id"]]
    cloud = ok(client.get("/2.0/repositories/default/widget/access-tokens", headers=root.auth))
    assert [str(v["id"]) for v in cloud["values"]] == [made["id"]]
    assert ok(client.get(f"{TOKENS}/PRJ", headers=root.auth))["values"] == []
    # One of another repository is not found under this one.
    other = ok(client.put(f"{TOKENS}/PRJ/repos/gadget",
                          json={"name": "g", "permissions": ["REPO_WRITE"]}, headers=root.auth))
    server_error(client.get(f"{url}/{other['id']}", headers=root.auth), 404)
    server_error(client.delete(f"{url}/{other['id']}", headers=root.auth), 404)
    # A repository only under its own project.
    server_error(client.get(f"{TOKENS}/OTHER/repos/widget", headers=root.auth), 404)
    assert client.delete(f"{url}/{made['id']}", headers=root.auth).status_code == 204
    server_error(client.get(f"{API}/projects/PRJ/repos/widget", headers=bearer(secret)), 401)


def test_who_may_manage_tokens(site, client):
    root, alice = site
    body = {"name": "t", "permissions": ["REPO_READ"]}
    # Hidden: 404; anonymous: 401.
    server_error(client.put(f"{TOKENS}/PRJ", json=body, headers=alice.auth), 404)
    server_error(client.put(f"{TOKENS}/PRJ", json=body), 401)
    server_error(client.get(f"{TOKENS}/PRJ/repos/widget", headers=alice.auth), 404)
    # Write on the project: visible, but not an admin.
    grant(client, root, "/2.0/workspaces/default/projects/PRJ", "write")
    server_error(client.put(f"{TOKENS}/PRJ", json=body, headers=alice.auth), 403)
    server_error(client.put(f"{TOKENS}/PRJ/repos/widget", json=body, headers=alice.auth), 403)
    # Admin of the repository only: its tokens, not the project's.
    grant(client, root, "/2.0/repositories/default/widget", "admin")
    ok(client.put(f"{TOKENS}/PRJ/repos/widget", json=body, headers=alice.auth))
    server_error(client.get(f"{TOKENS}/PRJ", headers=alice.auth), 403)
    # No token makes or manages tokens, not even one of an admin's own.
    grant(client, root, "/2.0/workspaces/default/projects/PRJ", "admin")
    pat = ok(client.put("/rest/access-tokens/1.0/users/alice", json={
        "name": "p", "permissions": ["PROJECT_ADMIN", "REPO_ADMIN"]}, headers=alice.auth))
    server_error(client.put(f"{TOKENS}/PRJ", json=body, headers=bearer(pat["token"])), 403,
                 "password")
    made = ok(client.put(f"{TOKENS}/PRJ", json={"name": "x", "permissions": [
        "PROJECT_ADMIN", "REPO_ADMIN"]}, headers=alice.auth))
    server_error(client.get(f"{TOKENS}/PRJ", headers=bearer(made["token"])), 403)
    server_error(client.put(f"{TOKENS}/PRJ", json=body, headers=bearer(made["token"])), 403)


def grant(client, root, resource, permission):
    r = client.put(f"{resource}/permissions-config/users/alice", json={"permission": permission},
                   headers=root.auth)
    assert r.status_code in (200, 201), r.text


def test_bad_input(site, client):
    root, _ = site
    project, repo = f"{TOKENS}/PRJ", f"{TOKENS}/PRJ/repos/widget"
    for url, body, words in [
        (project, {"permissions": ["REPO_READ"]}, "name"),
        (project, {"name": "t"}, "permissions"),
        (project, {"name": "t", "permissions": []}, "permissions"),
        (project, {"name": "t", "permissions": "REPO_READ"}, "permissions"),
        (project, {"name": "t", "permissions": ["REPO_EAT"]}, "unknown permission"),
        (project, {"name": "t", "permissions": ["PROJECT_READ"]}, "repository permission"),
        (project, {"name": "t", "permissions": ["PROJECT_ADMIN", "REPO_READ"]}, "at least"),
        (project, {"name": "t", "permissions": ["REPO_READ", "REPO_WRITE"]}, "only one"),
        (project, {"name": "t", "permissions": ["REPO_READ"], "expiryDays": 0}, "expirydays"),
        (project, {"name": "t", "permissions": ["REPO_READ"], "expiryDays": "5"}, "expirydays"),
        (project, {"name": "t", "permissions": ["REPO_READ"], "expiryDays": 10**6}, "at most"),
        (repo, {"name": "t", "permissions": ["PROJECT_READ", "REPO_READ"]}, "repository perm"),
        (repo, {"name": "", "permissions": ["REPO_READ"]}, "name"),
    ]:
        server_error(client.put(url, json=body, headers=root.auth), 400, words)
    server_error(client.get(f"{project}/abc", headers=root.auth), 404)
    server_error(client.post(f"{project}/abc", json={"name": "x"}, headers=root.auth), 404)
    server_error(client.put(f"{TOKENS}/NOPE", json={"name": "t", "permissions": ["REPO_READ"]},
                            headers=root.auth), 404)
    made = ok(client.put(project, json={"name": "t", "permissions": ["REPO_READ"]},
                         headers=root.auth))
    server_error(client.post(f"{project}/{made['id']}", json={"permissions": ["X"]},
                             headers=root.auth), 400, "unknown permission")
    server_error(client.post(f"{project}/{made['id']}", json={"name": 5}, headers=root.auth),
                 400, "name")


def test_the_table_is_what_a_pat_may_do():
    """Each Server permission grants as scopes exactly what a personal access token holding
    it may do (the two are checked by the same policy, from one table each)."""
    from gitward.domain.identity import (
        AuthContext,
        Bound,
        CredentialKind,
        Reach,
        TokenPrincipal,
        UserPrincipal,
    )
    from gitward.domain.permissions import (
        ACTIONS,
        PAT_PERMISSION_LEVELS,
        Action,
        Level,
        ResourceKind,
    )
    from gitward.domain.policy import LiveGrants, Target, authorize

    user = UserPrincipal(1, "alice")
    targets = {
        ResourceKind.REPOSITORY: Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=1,
                                        repository_id=1),
        ResourceKind.PROJECT: Target(ResourceKind.PROJECT, workspace_id=1, project_id=1),
    }
    admin = LiveGrants(project_grant=Level.ADMIN, repository_grant=Level.ADMIN)
    differ = set()
    for permission, (kind, level) in PAT_PERMISSION_LEVELS.items():
        levels = {kind: level}
        if kind is ResourceKind.PROJECT:
            levels[ResourceKind.REPOSITORY] = level
        pat = AuthContext(user, CredentialKind.PERSONAL_ACCESS_TOKEN, Bound(pat=levels))
        token = AuthContext(
            TokenPrincipal(1, "t", CredentialKind.PROJECT_ACCESS_TOKEN),
            CredentialKind.PROJECT_ACCESS_TOKEN,
            Bound(scopes=frozenset(TOKEN_SCOPES[permission]), reach=Reach(1, 1)),
        )
        for action, rule in ACTIONS.items():
            if rule.resource not in targets or rule.pat is None or rule.scope is None:
                continue
            target = targets[rule.resource]
            by_pat = bool(authorize(pat, action, target, admin))
            by_token = bool(authorize(token, action, target, LiveGrants()))
            if by_pat != by_token:
                differ.add((permission, action, by_token))
    # The one difference, written in docs/server-api.md: creating a repository in the project
    # needs the scope repository:admin, which REPO_ADMIN must grant for the repositories'
    # settings, where a PAT needs PROJECT_ADMIN.
    assert differ == {(PatPermission.REPO_ADMIN, Action.PROJECT_CREATE_REPO, True)}
    assert Scope.REPOSITORY_ADMIN in TOKEN_SCOPES[PatPermission.REPO_ADMIN]
