"""Build statuses on both APIs: Cloud `R/commit/{id}/statuses[/build[/{key}]]`, Server
`/rest/build-status/1.0/commits[/stats]/{id}` and `P/commits/{id}/builds`.

Runs on SQLite and PostgreSQL (the `settings` fixture). Three repositories are written with
the same `git fast-import` stream, so they hold the same commits (the repository-less Server
API answers over all of them).

Where the expected shapes come from:
- Cloud's `commitstatus` (`type`, `key`, `state`, `name`, `description`, `url`, `refname`,
  `created_on`, `updated_on`, `links.self`, `links.commit`, `uuid`), the page, POST answering
  201 and replacing a known key: Bitbucket Cloud's REST reference, "Commit statuses" group
  (developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/);
- reading and reporting with the `repository` scope (read:repository:bitbucket), and a status
  replaced only by its reporter or a repository admin: that page and Bitbucket Cloud's change
  notice "Updating commit status permissions" (bitbucket-api-changes-commit-status);
- Server's build-status module (`state`, `key`, `name`, `url`, `description`, `dateAdded`,
  POST 204, Server paging) and the stats object: Bitbucket Server's "Updating build status for
  commits" how-to and its REST reference as bound by WebService::BitbucketServer::Build::V1
  (`GET build-status/1.0/commits/stats/{commitId}`); `cancelled`/`unknown` and the newer
  `P/commits/{id}/builds` fields (`buildNumber`, `duration`, `ref`, `parent`, `testResults`,
  `createdDate`, `updatedDate`; states SUCCESSFUL, FAILED, INPROGRESS, CANCELLED, UNKNOWN):
  the Data Center how-to and the bitbucket-server-rs crate's `build_status` types.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gitward.gitstore.store import git_env
from tests.integration.api_checks import cloud_error, server_error
from tests.integration.conftest import basic, bearer

R = "/2.0/repositories/acme/{repo}/commit/{commit}"
P = "/rest/api/1.0/projects/PRJ/repos/{repo}/commits/{commit}/builds"
LEGACY = "/rest/build-status/1.0/commits"
CLOUD_KEYS = {"type", "uuid", "key", "state", "name", "description", "url", "refname",
              "created_on", "updated_on", "links"}
MISSING = "0123456789abcdef0123456789abcdef01234567"


def history() -> bytes:
    def blob(data: bytes) -> bytes:
        return b"data %d\n%s\n" % (len(data), data)

    head = b"author Ada <ada@example.com> %d +0000\ncommitter Ada <ada@example.com> %d +0000\n"
    return (
        b"commit refs/heads/main\nmark :1\n" + head % (1700000000, 1700000000) + blob(b"one\n")
        + b"M 100644 inline a.txt\n" + blob(b"a\n") + b"\n"
        + b"commit refs/heads/main\nmark :2\n" + head % (1700000100, 1700000100)
        + blob(b"two\n") + b"from :1\nM 100644 inline a.txt\n" + blob(b"b\n") + b"\n"
    )


def fill(world: Any, slug: str) -> list[str]:
    with world.runtime.unit_of_work() as store:
        view = store.repos.repository_view("acme", slug)
        assert view is not None
        path = world.runtime.git.path_of(view.storage_name)
    env = git_env()
    subprocess.run(["git", "--git-dir", str(path), "fast-import", "--quiet"], input=history(),
                   check=True, capture_output=True, env=env)
    out = subprocess.run(["git", "--git-dir", str(path), "log", "--format=%H", "main"],
                         check=True, capture_output=True, env=env).stdout.decode().split()
    return out[::-1]  # oldest first


@pytest.fixture
def setup(world):
    alice = world.user("alice")
    bob = world.user("bob")
    carol = world.user("carol")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.repository(alice, "acme", "open", "PRJ", private=False)
    world.repository(alice, "acme", "other", "PRJ")
    commits = fill(world, "widget")
    assert fill(world, "open") == commits == fill(world, "other")
    world.grant_repo(alice, "acme", "widget", "bob", "read")
    return alice, bob, carol, commits


def pat(client, account, permissions: list[str]) -> dict[str, str]:
    r = client.put(f"/rest/access-tokens/1.0/users/{account.username}",
                   json={"name": "ci", "permissions": permissions}, headers=account.auth)
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


def repo_token(client, admin, repo: str, scopes: list[str]) -> dict[str, str]:
    r = client.post(f"/2.0/repositories/acme/{repo}/access-tokens",
                    json={"name": "ci", "scopes": scopes}, headers=admin.auth)
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


def audit_of(world, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with world.runtime.unit_of_work() as store:
        return [(e.actor, e.target, dict(e.details)) for e in store.audit.events()
                if e.action == action]


def test_cloud_report_update_list_field_by_field(setup, client, world):
    alice, _, _, (c1, c2) = setup
    base = R.format(repo="widget", commit=c2)
    body = {"key": "ci/build", "state": "INPROGRESS", "name": "Build #1",
            "description": "Running", "url": "https://ci.example.com/1", "refname": "main"}
    r = client.post(base + "/statuses/build", json=body, headers=alice.auth)
    assert r.status_code == 201, r.text
    made = r.json()
    assert set(made) == CLOUD_KEYS
    assert made["type"] == "build"
    assert made["uuid"].startswith("{") and made["uuid"].endswith("}")
    for field in ("key", "state", "name", "description", "url", "refname"):
        assert made[field] == body[field]
    assert made["created_on"].endswith("Z") and made["updated_on"] == made["created_on"]
    href = made["links"]["self"]["href"]
    assert href == f"http://testserver{base}/statuses/build/ci%2Fbuild"
    assert made["links"]["commit"]["href"] == f"http://testserver{base}"

    # The same key again replaces it: same uuid and creation time, one status.
    again = {"key": "ci/build", "state": "SUCCESSFUL", "url": "https://ci.example.com/1"}
    r = client.post(base + "/statuses/build", json=again, headers=alice.auth)
    assert r.status_code == 201, r.text
    replaced = r.json()
    assert (replaced["uuid"], replaced["created_on"]) == (made["uuid"], made["created_on"])
    assert replaced["state"] == "SUCCESSFUL" and replaced["name"] is None
    assert replaced["updated_on"] >= made["updated_on"]

    # PUT changes what it sends, keeps the rest; the key cannot change.
    r = client.put(base + "/statuses/build/ci%2Fbuild",
                   json={"state": "FAILED", "description": "1 test failed"}, headers=alice.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["description"], r.json()["url"]) == (
        "FAILED", "1 test failed", "https://ci.example.com/1")
    cloud_error(client.put(base + "/statuses/build/ci%2Fbuild", json={"key": "other"},
                           headers=alice.auth), 400, "key")
    cloud_error(client.put(base + "/statuses/build/nope", json={"state": "FAILED"},
                           headers=alice.auth), 404)

    client.post(base + "/statuses/build", json={"key": "lint", "state": "STOPPED",
                                                "url": "http://ci.example.com/2"},
                headers=alice.auth)
    for path in ("/statuses", "/statuses/build"):
        page = client.get(base + path, headers=alice.auth).json()
        assert {k: page[k] for k in ("pagelen", "size", "page")} == {
            "pagelen": 10, "size": 2, "page": 1}
        assert [(s["key"], s["state"]) for s in page["values"]] == [
            ("ci/build", "FAILED"), ("lint", "STOPPED")]
    page = client.get(base + "/statuses?pagelen=1", headers=alice.auth).json()
    assert len(page["values"]) == 1 and "page=2" in page["next"]
    got = client.get(href, headers=alice.auth)
    assert got.status_code == 200 and got.json()["state"] == "FAILED"

    # An abbreviated id names the same commit; another commit has its own statuses.
    short = client.get(R.format(repo="widget", commit=c2[:12]) + "/statuses", headers=alice.auth)
    assert short.json()["size"] == 2
    assert client.get(R.format(repo="widget", commit=c1) + "/statuses",
                      headers=alice.auth).json()["size"] == 0
    # Commits the repository does not hold, and what is no commit id.
    cloud_error(client.get(R.format(repo="widget", commit=MISSING) + "/statuses",
                           headers=alice.auth), 404)
    cloud_error(client.post(R.format(repo="widget", commit=MISSING) + "/statuses/build",
                            json=again, headers=alice.auth), 404)
    cloud_error(client.get(R.format(repo="widget", commit="main") + "/statuses",
                           headers=alice.auth), 400, "commit id")
    cloud_error(client.get(base + "/statuses/build/nope", headers=alice.auth), 404)

    events = audit_of(world, "build-status.set")
    assert len(events) == 4
    actor, target, details = events[0]
    assert (actor, target) == ("user:alice", "repository:acme/widget")
    assert details == {"commit": c2, "key": "ci/build", "state": "INPROGRESS", "created": True,
                       "credential": "password"}
    assert events[1][2]["created"] is False


def test_server_builds_legacy_api_and_stats(setup, client):
    alice, bob, _, (c1, c2) = setup
    build = {"key": "JOB-1", "state": "CANCELLED", "url": "https://jenkins.example.com/job/1",
             "name": "Job", "description": "stopped", "buildNumber": "17", "duration": 1234,
             "ref": "refs/heads/main", "parent": "JOB",
             "testResults": {"successful": 5, "failed": 1, "skipped": 2}}
    r = client.post(P.format(repo="widget", commit=c1), json=build, headers=alice.auth)
    assert r.status_code == 204, r.text
    got = client.get(P.format(repo="widget", commit=c1) + "?key=JOB-1", headers=alice.auth)
    assert got.status_code == 200, got.text
    one = got.json()
    assert set(one) == {"key", "state", "url", "name", "description", "buildNumber",
                        "duration", "ref", "parent", "testResults", "createdDate",
                        "updatedDate"}
    for field in ("key", "state", "url", "name", "description", "buildNumber", "duration",
                  "ref", "parent", "testResults"):
        assert one[field] == build[field], field
    assert isinstance(one["createdDate"], int) and one["updatedDate"] >= one["createdDate"]
    # Server's CANCELLED is Cloud's STOPPED.
    cloud = client.get(R.format(repo="widget", commit=c1) + "/statuses", headers=alice.auth)
    assert [(s["key"], s["state"], s["refname"]) for s in cloud.json()["values"]] == [
        ("JOB-1", "STOPPED", "refs/heads/main")]
    page = client.get(P.format(repo="widget", commit=c1), headers=alice.auth).json()
    assert {k: page[k] for k in ("size", "limit", "isLastPage", "start")} == {
        "size": 1, "limit": 25, "isLastPage": True, "start": 0}
    server_error(client.get(P.format(repo="widget", commit=c1) + "?key=nope",
                            headers=alice.auth), 404)
    server_error(client.get(P.format(repo="widget", commit=MISSING), headers=alice.auth), 404)

    # The repository-less module: reported on every repository alice may report to that
    # holds the commit (all three), listed and counted over what the caller may read.
    legacy = {"state": "SUCCESSFUL", "key": "BAMBOO-1", "name": "Plan",
              "url": "https://bamboo.example.com/1", "description": "green"}
    r = client.post(f"{LEGACY}/{c1}", json=legacy, headers=alice.auth)
    assert r.status_code == 204, r.text
    page = client.get(f"{LEGACY}/{c1}", headers=alice.auth).json()
    assert {k: page[k] for k in ("size", "limit", "isLastPage", "start")} == {
        "size": 4, "limit": 25, "isLastPage": True, "start": 0}
    first = page["values"][0]
    assert set(first) == {"state", "key", "name", "url", "description", "dateAdded"}
    assert (first["state"], first["key"], first["name"], first["url"], first["description"]) \
        == ("CANCELLED", "JOB-1", "Job", build["url"], "stopped")
    assert [v["key"] for v in page["values"][1:]] == ["BAMBOO-1"] * 3
    assert client.get(f"{LEGACY}/{c1}?limit=2", headers=alice.auth).json()["nextPageStart"] == 2
    stats = client.get(f"{LEGACY}/stats/{c1}", headers=alice.auth).json()
    assert stats == {"successful": 3, "failed": 0, "inProgress": 0, "cancelled": 1,
                     "unknown": 0}
    # bob reads widget (granted) and open (public), not other.
    assert client.get(f"{LEGACY}/stats/{c1}", headers=bob.auth).json()["successful"] == 2
    assert client.get(f"{LEGACY}/latest/commits/stats/{c1}".replace(
        "/1.0/commits/latest/commits", "/latest/commits"), headers=bob.auth).json()[
        "cancelled"] == 1
    assert client.get(f"{LEGACY}/{c2}", headers=alice.auth).json()["values"] == []
    server_error(client.get(f"{LEGACY}/{c1[:12]}", headers=alice.auth), 400, "full commit id")
    server_error(client.post(f"{LEGACY}/{MISSING}", json=legacy, headers=alice.auth), 404)
    # Reported again: replaced, not added.
    client.post(f"{LEGACY}/{c1}", json={**legacy, "state": "FAILED"}, headers=alice.auth)
    assert client.get(f"{LEGACY}/stats/{c1}", headers=alice.auth).json()["failed"] == 3


def test_permission_matrix(setup, client):
    alice, bob, carol, (_, c2) = setup
    body = {"key": "K", "state": "SUCCESSFUL", "url": "https://ci.example.com/"}
    widget = R.format(repo="widget", commit=c2)

    # A read-only PAT reports and reads (REPO_READ, as Bitbucket Server).
    read_pat = pat(client, bob, ["REPO_READ"])
    r = client.post(P.format(repo="widget", commit=c2), json=body, headers=read_pat)
    assert r.status_code == 204, r.text
    assert client.get(widget + "/statuses", headers=read_pat).json()["size"] == 1
    r = client.post(widget + "/statuses/build", json={**body, "key": "K2"}, headers=read_pat)
    assert r.status_code == 201, r.text
    # ... but does not replace what someone else reported: that needs repository admin.
    alice_row = {**body, "key": "ALICE"}
    assert client.post(widget + "/statuses/build", json=alice_row,
                       headers=alice.auth).status_code == 201
    cloud_error(client.post(widget + "/statuses/build", json={**alice_row, "state": "FAILED"},
                            headers=read_pat), 403, "REPO_ADMIN")
    cloud_error(client.put(widget + "/statuses/build/ALICE", json={"state": "FAILED"},
                           headers=bob.auth), 403, "admin")
    r = client.put(widget + "/statuses/build/K", json={"state": "FAILED"}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["state"] == "FAILED"

    # An app password with `repository` reports; an API token with
    # read:repository:bitbucket too, and one without it is refused naming it.
    app = client.post("/2.0/user/app-passwords", json={"label": "ci", "scopes": ["repository"]},
                      headers=bob.auth).json()["password"]
    r = client.post(widget + "/statuses/build/", json={**body, "key": "APP"},
                    headers=basic("bob", app))
    assert r.status_code == 201, r.text  # the trailing slash of Bitbucket's own example
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def api_token(scopes: list[str]) -> dict[str, str]:
        r = client.post("/2.0/user/api-tokens", json={"name": "ci", "scopes": scopes,
                                                      "expires_on": expires},
                        headers=bob.auth)
        assert r.status_code == 201, r.text
        return basic("bob@example.com", r.json()["token"])

    reader = api_token(["read:repository:bitbucket"])
    assert client.post(widget + "/statuses/build", json={**body, "key": "API"},
                       headers=reader).status_code == 201
    cloud_error(client.post(widget + "/statuses/build", json=body,
                            headers=api_token(["read:pullrequest:bitbucket"])), 403,
                "read:repository:bitbucket")
    # Replacing alice's status needs admin:repository:bitbucket, which bob's token lacks.
    cloud_error(client.post(widget + "/statuses/build", json=alice_row, headers=reader), 403,
                "admin:repository:bitbucket")

    # A repository access token reports on its repository; another's is not there at all.
    other_token = repo_token(client, alice, "other", ["repository"])
    cloud_error(client.get(widget + "/statuses", headers=other_token), 404)
    cloud_error(client.post(widget + "/statuses/build", json=body, headers=other_token), 404)
    server_error(client.post(P.format(repo="widget", commit=c2), json=body,
                             headers=other_token), 404)
    r = client.post(R.format(repo="other", commit=c2) + "/statuses/build", json=body,
                    headers=other_token)
    assert r.status_code == 201, r.text
    # ... and through the repository-less API it sees and reaches only its repository.
    r = client.post(f"{LEGACY}/{c2}", json={**body, "key": "T"}, headers=other_token)
    assert r.status_code == 204, r.text
    assert [v["key"] for v in client.get(f"{LEGACY}/{c2}", headers=other_token).json()[
        "values"]] == ["K", "T"]
    # A token without a scope that reaches repositories is refused with what it lacks.
    webhook_token = repo_token(client, alice, "other", ["webhook"])
    cloud_error(client.get(R.format(repo="other", commit=c2) + "/statuses",
                           headers=webhook_token), 403, "repository")

    # Anonymous: reads a public repository's statuses, never reports; private ones ask for
    # credentials.
    open_commit = R.format(repo="open", commit=c2)
    assert client.get(open_commit + "/statuses").status_code == 200
    cloud_error(client.post(open_commit + "/statuses/build", json=body), 401)
    server_error(client.post(P.format(repo="open", commit=c2), json=body), 401)
    server_error(client.post(f"{LEGACY}/{c2}", json=body), 401)
    cloud_error(client.get(widget + "/statuses"), 401)
    # A signed-in user with no grant: the public repository is readable, so reportable (as
    # on Bitbucket); the private one does not exist for them.
    assert client.post(open_commit + "/statuses/build", json=body,
                       headers=carol.auth).status_code == 201
    cloud_error(client.get(widget + "/statuses", headers=carol.auth), 404)
    server_error(client.get(P.format(repo="widget", commit=c2), headers=carol.auth), 404)


def test_bad_input(setup, client):
    alice, _, _, (_, c2) = setup
    cloud = R.format(repo="widget", commit=c2) + "/statuses/build"
    server = P.format(repo="widget", commit=c2)
    good = {"key": "K", "state": "SUCCESSFUL", "url": "https://ci.example.com/"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "state": "DONE"}, "state"),
        ({**good, "state": 3}, "state"),
        ({k: v for k, v in good.items() if k != "key"}, "key"),
        ({k: v for k, v in good.items() if k != "url"}, "url"),
        ({k: v for k, v in good.items() if k != "state"}, "state"),
        ({**good, "url": "ftp://ci.example.com/"}, "http"),
        ({**good, "url": "javascript:alert(1)"}, "http"),
        ({**good, "url": "https://"}, "http"),
        ({**good, "key": "k" * 256}, "255"),
        ({**good, "name": "n" * 256}, "255"),
        ({**good, "name": 5}, "string"),
        ({**good, "description": "d\x00"}, "NUL"),
        ({**good, "key": "a\nb"}, "control"),
    ]
    for body, words in cases:
        cloud_error(client.post(cloud, json=body, headers=alice.auth), 400, words)
        server_error(client.post(server, json=body, headers=alice.auth), 400, words)
    # Server-only words and fields.
    server_error(client.post(server, json={**good, "state": "UNKNOWN"}, headers=alice.auth),
                 400, "state")
    cloud_error(client.post(cloud, json={**good, "state": "CANCELLED"}, headers=alice.auth),
                400, "state")
    for extra in ({"duration": -1}, {"duration": "long"}, {"testResults": [1]},
                  {"testResults": {"failed": -2}}, {"buildNumber": 7}):
        server_error(client.post(server, json={**good, **extra}, headers=alice.auth), 400)
    for raw in (b"[1]", b"{", b"\"text\""):
        cloud_error(client.post(cloud, content=raw, headers={
            **alice.auth, "Content-Type": "application/json"}), 400)
        server_error(client.post(f"{LEGACY}/{c2}", content=raw, headers={
            **alice.auth, "Content-Type": "application/json"}), 400)
    # Nothing of it was stored.
    assert client.get(R.format(repo="widget", commit=c2) + "/statuses",
                      headers=alice.auth).json()["size"] == 0
