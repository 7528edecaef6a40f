"""Bitbucket Server repository content: branches, tags, commits, browse, raw, files.

Runs on SQLite and PostgreSQL (the `settings` fixture). The repository is written straight
into the bare repository on disk with `git fast-import`, and every answer is compared with
what git itself says about it.

Where the expected shapes come from:
- branches (`id`, `displayId`, `type`, `latestCommit`, `latestChangeset`, `isDefault`, the
  page with `start`/`limit`/`isLastPage`): Jenkins bitbucket-branch-source-plugin's fixture
  `server/payload/1.0-projects-amuniz-repos-test-repos-branches_start_0_limit_200_filterText_master.json`
  and atlassian-python-api's `tests/responses/bitbucket/server/.../branches/GET`;
- `details=true` metadata keys (`…bitbucket-branch:latest-commit-metadata`,
  `…:ahead-behind-metadata-provider` with `ahead`/`behind`, absent on the base branch):
  payloads recorded from Bitbucket 10.4 in the bitbucket-data-center-cli tests;
- commits (`id`, `displayId` of 11 characters, `author`/`committer` `{name, emailAddress}`,
  `authorTimestamp`/`committerTimestamp` in ms, `parents[{id, displayId}]`): Jenkins'
  `BitbucketServerCommit` (the fields it reads) and Bitbucket Server's REST documentation;
- browse of a file (`lines[{text}]`, `start`, `size` = lines on the page, `isLastPage`):
  Renovate's `lib/modules/platform/bitbucket-server` (`getRawFile` asks `limit=20000` and reads
  `isLastPage`, `lines[].text`) and Jenkins' `getFileContent` (`start += size`);
- browse of a directory (`path{components,name,toString}`, `revision`, `children` page of
  `{path, contentId, type, size}`, child paths relative to the directory): Jenkins'
  `getDirectoryContent` (reads `children.values[].path.components[0]` and `type`);
- `type=true` answering `{"type": "FILE"|"DIRECTORY"}`, HEAD on browse 200/404: Jenkins'
  `getFile` and `checkPathExists`;
- `branches/default` answering 204 on an empty repository: Renovate's `initRepo`;
- create `{name, startPoint, message}`, delete through branch-utils `{name, endPoint}`,
  default `PUT {"id": "refs/heads/…"}`, tags with `hash`, `files` as a page of strings, raw:
  atlassian-python-api's `atlassian/bitbucket/__init__.py`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from gitward.gitstore.store import git_env
from tests.integration.api_checks import server_error
from tests.integration.conftest import bearer

P = "/rest/api/1.0/projects/PRJ/repos/widget"
UTILS = "/rest/branch-utils/1.0/projects/PRJ/repos/widget/branches"

BRANCH_KEYS = {"id", "displayId", "type", "latestCommit", "latestChangeset", "isDefault"}
COMMIT_KEYS = {"id", "displayId", "author", "authorTimestamp", "committer",
               "committerTimestamp", "message", "parents"}
PAGE_KEYS = {"size", "limit", "isLastPage", "start", "values"}
BIG_LINES = 40


def blob(data: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(data), data)


def history() -> bytes:
    """main: c1 (root) -> c2 -> c3; feature/x: c2 -> f1. Tags v1 (c1), v2 (annotated, c2)."""
    big = b"".join(b"line %d\n" % i for i in range(1, BIG_LINES + 1))

    def commit(ref: bytes, mark: int, who: bytes, when: int, message: bytes, parent: int | None,
               *changes: bytes) -> bytes:
        head = b"commit %s\nmark :%d\nauthor %s %d +0100\ncommitter %s %d +0100\n" % (
            ref, mark, who, when, who, when)
        return head + blob(message) + (b"from :%d\n" % parent if parent else b"") + b"".join(
            changes) + b"\n"

    return b"".join([
        commit(b"refs/heads/main", 1, b"Ada <ada@example.com>", 1700000000, b"first\n\nbody\n",
               None,
               b"M 100644 inline README.md\n" + blob(b"# Widget\nline two\n"),
               b"M 100644 inline src/app.py\n" + blob(b"print('one')\n"),
               b"M 100644 inline bin.dat\n" + blob(b"\x00\x01binary\xff"),
               b"M 100644 inline page.html\n" + blob(b"<script>alert(1)</script>\n"),
               b"M 100644 inline docs/big.txt\n" + blob(big)),
        commit(b"refs/heads/main", 2, b"Bob <bob@example.com>", 1700000100, b"second\n", 1,
               b"M 100644 inline src/app.py\n" + blob(b"print('two')\n"),
               b"M 100644 inline src/lib/util.py\n" + blob(b"x = 1\n")),
        commit(b"refs/heads/feature/x", 4, b"Dee <dee@example.com>", 1700000150, b"feature\n",
               2, b"M 100644 inline f.txt\n" + blob(b"f\n")),
        commit(b"refs/heads/main", 3, b"Cy <cy@example.com>", 1700000200, b"third\n", 2,
               b"M 100644 inline README.md\n" + blob(b"# Widget\nline two\nthree\n")),
        b"reset refs/tags/v1\nfrom :1\n\n",
        b"tag v2\nfrom :2\ntagger Tess <t@example.com> 1700000300 +0000\n" + blob(b"Release 2\n"),
    ])


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(self.path), *args], check=True,
                              capture_output=True, env=git_env()).stdout.decode()

    def rev(self, name: str) -> str:
        return self.git("rev-parse", name).strip()

    def log(self, *args: str) -> list[str]:
        return self.git("log", "--format=%H", *args).split()


def storage_path(world: Any, workspace: str, slug: str) -> Path:
    with world.runtime.unit_of_work() as store:
        view = store.repos.repository_view(workspace, slug)
        assert view is not None
        return world.runtime.git.path_of(view.storage_name)


@pytest.fixture
def setup(world):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    path = storage_path(world, "acme", "widget")
    subprocess.run(["git", "--git-dir", str(path), "fast-import", "--quiet"], input=history(),
                   check=True, capture_output=True, env=git_env())
    return alice, bob, Repo(path)


def pat(client, account, permissions: list[str]) -> dict[str, str]:
    r = client.put(f"/rest/access-tokens/1.0/users/{account.username}",
                   json={"name": "t", "permissions": permissions}, headers=account.auth)
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


def audit_events(world, action: str) -> list[Any]:
    with world.runtime.unit_of_work() as store:
        return [(e.action, e.actor, e.target, dict(e.details)) for e in store.audit.events()
                if e.action == action]


# -- branches ---------------------------------------------------------------------------


def test_branches_field_by_field(setup, client):
    alice, _, repo = setup
    r = client.get(f"{P}/branches", headers=alice.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == PAGE_KEYS
    assert (body["size"], body["limit"], body["isLastPage"], body["start"]) == (2, 25, True, 0)
    feature, main = body["values"]
    assert set(main) == BRANCH_KEYS
    assert main == {
        "id": "refs/heads/main", "displayId": "main", "type": "BRANCH",
        "latestCommit": repo.rev("main"), "latestChangeset": repo.rev("main"), "isDefault": True,
    }
    assert feature["id"] == "refs/heads/feature/x" and feature["isDefault"] is False
    assert feature["latestCommit"] == repo.rev("feature/x")
    # /rest/api/latest is the same API
    assert client.get("/rest/api/latest/projects/prj/repos/WIDGET/branches",
                      headers=alice.auth).json() == body
    server_error(client.get("/rest/api/2.0/projects/PRJ/repos/widget/branches",
                            headers=alice.auth), 404)


def test_branches_paging_filter_and_order(setup, client):
    alice, _, repo = setup
    repo.git("update-ref", "refs/heads/old", repo.rev("main~2"))
    get = lambda q: client.get(f"{P}/branches?{q}", headers=alice.auth)  # noqa: E731
    first = get("limit=2").json()
    assert [b["displayId"] for b in first["values"]] == ["feature/x", "main"]
    assert first["isLastPage"] is False and first["nextPageStart"] == 2
    second = get("limit=2&start=2").json()
    assert [b["displayId"] for b in second["values"]] == ["old"]
    assert second["isLastPage"] is True and "nextPageStart" not in second
    assert [b["displayId"] for b in get("filterText=MA").json()["values"]] == ["main"]
    newest = get("orderBy=MODIFICATION").json()["values"]
    assert [b["displayId"] for b in newest] == ["main", "feature/x", "old"]
    assert [b["displayId"] for b in get("orderBy=alphabetical").json()["values"]] == [
        "feature/x", "main", "old"]
    # boostMatches: the exact match first (atlassian-python-api sends it, and details=True)
    repo.git("update-ref", "refs/heads/xmain", repo.rev("main"))
    boosted = get("filterText=main&boostMatches=True&details=False").json()["values"]
    assert [b["displayId"] for b in boosted] == ["main", "xmain"]
    # a limit above the maximum is lowered to it, as Server's fixed limits do
    assert get("limit=100000").json()["limit"] == 1000
    for bad in ("limit=abc", "limit=0", "limit=-1", "start=-1", "start=x", "orderBy=SIZE",
                "details=maybe"):
        server_error(get(bad), 400)


def test_branches_details(setup, client):
    alice, _, repo = setup
    r = client.get(f"{P}/branches?details=true", headers=alice.auth)
    feature, main = r.json()["values"]
    latest = "com.atlassian.bitbucket.server.bitbucket-branch:latest-commit-metadata"
    ahead = "com.atlassian.bitbucket.server.bitbucket-branch:ahead-behind-metadata-provider"
    assert set(main["metadata"]) == {latest}  # the base has no ahead/behind
    assert main["metadata"][latest]["id"] == repo.rev("main")
    assert set(main["metadata"][latest]) == COMMIT_KEYS
    assert feature["metadata"][ahead] == {"ahead": 1, "behind": 1}
    based = client.get(f"{P}/branches?details=true&base=feature/x", headers=alice.auth).json()
    assert based["values"][1]["metadata"][ahead] == {"ahead": 1, "behind": 1}
    assert ahead not in based["values"][0]["metadata"]
    server_error(client.get(f"{P}/branches?details=true&base=nope", headers=alice.auth), 404)


def test_default_branch_get_and_set(setup, client, world):
    alice, bob, repo = setup
    r = client.get(f"{P}/branches/default", headers=alice.auth)
    assert r.status_code == 200
    assert r.json() == {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH",
                        "latestCommit": repo.rev("main"), "latestChangeset": repo.rev("main"),
                        "isDefault": True}
    r = client.put(f"{P}/branches/default", json={"id": "refs/heads/feature/x"},
                   headers=alice.auth)
    assert r.status_code == 204, r.text
    assert client.get(f"{P}/branches/default", headers=alice.auth).json()["displayId"] == (
        "feature/x")
    assert repo.git("symbolic-ref", "HEAD").strip() == "refs/heads/feature/x"
    cloud = client.get("/2.0/repositories/acme/widget", headers=alice.auth).json()
    assert cloud["mainbranch"]["name"] == "feature/x"
    listed = client.get(f"{P}/branches", headers=alice.auth).json()["values"]
    assert [b["isDefault"] for b in listed] == [True, False]
    server_error(client.put(f"{P}/branches/default", json={"id": "refs/heads/nope"},
                            headers=alice.auth), 404)
    server_error(client.put(f"{P}/branches/default", json={"id": "a..b"},
                            headers=alice.auth), 400)
    server_error(client.put(f"{P}/branches/default", json={}, headers=alice.auth), 400)
    # setting the default branch is a repository admin's: write is not enough
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    server_error(client.put(f"{P}/branches/default", json={"id": "main"}, headers=bob.auth),
                 403)


def test_default_branch_of_an_empty_repository_is_204(world, client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "empty", "PRJ")
    base = "/rest/api/1.0/projects/PRJ/repos/empty"
    r = client.get(f"{base}/branches/default", headers=alice.auth)
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"{base}/branches", headers=alice.auth).json()["values"] == []
    commits = client.get(f"{base}/commits", headers=alice.auth).json()
    assert commits["values"] == [] and commits["isLastPage"] is True
    server_error(client.get(f"{base}/browse", headers=alice.auth), 404)
    # an empty repository takes the name its first push will make default
    assert client.put(f"{base}/branches/default", json={"id": "refs/heads/trunk"},
                      headers=alice.auth).status_code == 204
    path = storage_path(world, "acme", "empty")
    assert Repo(path).git("symbolic-ref", "HEAD").strip() == "refs/heads/trunk"


def test_create_branch(setup, client, world):
    alice, _, repo = setup
    r = client.post(f"{P}/branches", json={"name": "topic", "startPoint": "refs/heads/main",
                                           "message": "ignored"}, headers=alice.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "refs/heads/topic", "displayId": "topic", "type": "BRANCH",
                        "latestCommit": repo.rev("main"), "latestChangeset": repo.rev("main"),
                        "isDefault": False}
    assert repo.rev("refs/heads/topic") == repo.rev("main")
    # from a tag (peeled to its commit), from an abbreviated commit id
    r = client.post(f"{P}/branches", json={"name": "from-tag", "startPoint": "v2"},
                    headers=alice.auth)
    assert r.json()["latestCommit"] == repo.rev("v2^{commit}")
    r = client.post(f"{P}/branches", json={"name": "from-id", "startPoint": repo.rev("main~2")[:8]},
                    headers=alice.auth)
    assert r.json()["latestCommit"] == repo.rev("main~2")
    # branch-utils takes the same request
    r = client.post(UTILS, json={"name": "utils", "startPoint": "main"}, headers=alice.auth)
    assert r.status_code == 200 and repo.rev("refs/heads/utils") == repo.rev("main")
    # audited as the push it is
    events = audit_events(world, "repository.push")
    created = [e for e in events if e[3]["refs"][0]["ref"] == "refs/heads/topic"]
    assert len(created) == 1
    _, actor, target, details = created[0]
    assert actor == "user:alice" and target == "repository:acme/widget"
    assert details["refs"] == [{"ref": "refs/heads/topic", "old": "0" * 40,
                                "new": repo.rev("main")}]
    # refusals
    post = lambda body: client.post(f"{P}/branches", json=body, headers=alice.auth)  # noqa: E731
    server_error(post({"name": "topic", "startPoint": "main"}), 409, "already exists")
    server_error(post({"name": "new", "startPoint": "nope"}), 404)
    server_error(post({"name": "new", "startPoint": "0" * 40}), 404)
    server_error(post({"name": "new", "startPoint": "main~1"}), 400)
    for bad in ("a..b", "-x", "with space", "x.lock", "HEAD", "a\x00b", "", "refs/heads/"):
        server_error(post({"name": bad, "startPoint": "main"}), 400)
    server_error(post({"name": "new"}), 400)
    server_error(post({"name": 1, "startPoint": "main"}), 400)


def test_delete_branch(setup, client, world):
    alice, _, repo = setup
    feature = repo.rev("feature/x")
    delete = lambda body: client.request("DELETE", UTILS, json=body, headers=alice.auth)  # noqa: E731
    # a dry run checks and changes nothing
    assert delete({"name": "feature/x", "dryRun": True}).status_code == 204
    assert repo.rev("refs/heads/feature/x") == feature
    server_error(delete({"name": "feature/x", "endPoint": repo.rev("main")}), 409)
    server_error(delete({"name": "nope"}), 404)
    server_error(delete({"name": "main"}), 400, "default branch")
    server_error(delete({"name": "a..b"}), 400)
    server_error(delete({}), 400)
    r = delete({"name": "refs/heads/feature/x", "endPoint": feature})
    assert r.status_code == 204, r.text
    assert "feature/x" not in repo.git("for-each-ref", "--format=%(refname)")
    events = [e for e in audit_events(world, "repository.push")
              if e[3]["refs"][0]["ref"] == "refs/heads/feature/x"]
    assert [e[3]["refs"] for e in events] == [
        [{"ref": "refs/heads/feature/x", "old": feature, "new": "0" * 40}]]
    server_error(delete({"name": "feature/x"}), 404)


def test_who_may_write_branches(setup, client, world):
    alice, bob, repo = setup
    body = {"name": "bobs", "startPoint": "main"}
    # an outsider does not learn the repository exists; anonymous is asked to sign in
    server_error(client.post(f"{P}/branches", json=body, headers=bob.auth), 404)
    server_error(client.post(f"{P}/branches", json=body), 401)
    world.grant_repo(alice, "acme", "widget", "bob", "read")
    server_error(client.post(f"{P}/branches", json=body, headers=bob.auth), 403)
    server_error(client.request("DELETE", UTILS, json={"name": "feature/x"}, headers=bob.auth),
                 403)
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    # a REPO_READ token of a user who may write still cannot: 403 naming what it lacks
    read_token = pat(client, bob, ["REPO_READ"])
    error = server_error(client.post(f"{P}/branches", json=body, headers=read_token), 403)
    assert "REPO_WRITE" in error["errors"][0]["message"], error
    server_error(client.request("DELETE", UTILS, json={"name": "feature/x"},
                                headers=read_token), 403, "REPO_WRITE")
    assert client.get(f"{P}/branches", headers=read_token).status_code == 200
    write_token = pat(client, bob, ["REPO_WRITE"])
    assert client.post(f"{P}/branches", json=body, headers=write_token).status_code == 200
    assert client.request("DELETE", UTILS, json={"name": "bobs"},
                          headers=write_token).status_code == 204
    assert "refs/heads/bobs" not in repo.git("for-each-ref", "--format=%(refname)")
    assert len([e for e in audit_events(world, "repository.push")
                if e[1] == "user:bob"]) == 2


# -- tags -------------------------------------------------------------------------------


def test_tags(setup, client):
    alice, _, repo = setup
    r = client.get(f"{P}/tags", headers=alice.auth)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == PAGE_KEYS
    v2, v1 = body["values"]  # newest first by default
    assert v2 == {"id": "refs/tags/v2", "displayId": "v2", "type": "TAG",
                  "latestCommit": repo.rev("v2^{commit}"),
                  "latestChangeset": repo.rev("v2^{commit}"), "hash": repo.rev("refs/tags/v2")}
    assert v2["hash"] != v2["latestCommit"]  # annotated: the tag object
    assert v1["latestCommit"] == v1["hash"] == repo.rev("main~2")
    names = lambda q: [t["displayId"] for t in  # noqa: E731
                       client.get(f"{P}/tags?{q}", headers=alice.auth).json()["values"]]
    assert names("orderBy=ALPHABETICAL") == ["v1", "v2"]
    assert names("filterText=2") == ["v2"]
    assert names("limit=1&start=1&orderBy=ALPHABETICAL") == ["v2"]
    assert client.get(f"{P}/tags/v2", headers=alice.auth).json() == v2
    repo.git("update-ref", "refs/tags/release/1.0", repo.rev("main"))
    one = client.get(f"{P}/tags/release/1.0", headers=alice.auth).json()
    assert one["id"] == "refs/tags/release/1.0" and one["latestCommit"] == repo.rev("main")
    server_error(client.get(f"{P}/tags/nope", headers=alice.auth), 404)
    server_error(client.get(f"{P}/tags?orderBy=x", headers=alice.auth), 400)


# -- commits ----------------------------------------------------------------------------


def test_commits_field_by_field(setup, client):
    alice, _, repo = setup
    r = client.get(f"{P}/commits", headers=alice.auth)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == PAGE_KEYS and body["isLastPage"] is True
    assert [c["id"] for c in body["values"]] == repo.log("main")
    third = body["values"][0]
    assert set(third) == COMMIT_KEYS
    assert third == {
        "id": repo.rev("main"),
        "displayId": repo.rev("main")[:11],
        "author": {"name": "Cy", "emailAddress": "cy@example.com"},
        "authorTimestamp": 1700000200000,
        "committer": {"name": "Cy", "emailAddress": "cy@example.com"},
        "committerTimestamp": 1700000200000,
        "message": "third",
        "parents": [{"id": repo.rev("main~1"), "displayId": repo.rev("main~1")[:11]}],
    }
    assert body["values"][-1]["message"] == "first\n\nbody"
    assert body["values"][-1]["parents"] == []
    one = client.get(f"{P}/commits/{repo.rev('main')}", headers=alice.auth)
    assert one.status_code == 200 and one.json() == third
    assert client.get(f"{P}/commits/{repo.rev('main')[:7]}", headers=alice.auth).json() == third


def test_commits_since_until_path_and_paging(setup, client):
    alice, _, repo = setup
    ids = lambda q: [c["id"] for c in  # noqa: E731
                     client.get(f"{P}/commits?{q}", headers=alice.auth).json()["values"]]
    assert ids("until=feature/x") == repo.log("feature/x")
    assert ids("until=refs/heads/feature/x&since=main") == repo.log("main..feature/x")
    assert ids(f"since={repo.rev('main~2')}") == repo.log("main~2..main")
    assert ids("path=src/app.py") == repo.log("main", "--", "src/app.py")
    assert ids("path=src") == repo.log("main", "--", "src")
    assert ids("until=v2") == repo.log("v2")
    page = client.get(f"{P}/commits?limit=1&start=1", headers=alice.auth).json()
    assert [c["id"] for c in page["values"]] == [repo.rev("main~1")]
    assert page["isLastPage"] is False and page["nextPageStart"] == 2 and page["limit"] == 1
    last = client.get(f"{P}/commits?limit=2&start=1", headers=alice.auth).json()
    assert last["isLastPage"] is True
    with_path = client.get(f"{P}/commits/{repo.rev('main')}?path=src/app.py",
                           headers=alice.auth).json()
    assert with_path["id"] == repo.rev("main~1")
    for bad in ("until=nope", "since=nope"):
        server_error(client.get(f"{P}/commits?{bad}", headers=alice.auth), 404)
    for bad in ("until=main~1", "until=main..feature", "path=../x", "path=a%00b", "limit=x",
                "limit=0"):
        server_error(client.get(f"{P}/commits?{bad}", headers=alice.auth), 400)
    server_error(client.get(f"{P}/commits/{'0' * 40}", headers=alice.auth), 404)
    server_error(client.get(f"{P}/commits/deadbeef", headers=alice.auth), 404)
    server_error(client.get(f"{P}/commits/main~1", headers=alice.auth), 400)


# -- browse, raw, files -----------------------------------------------------------------


def test_browse_directory(setup, client):
    alice, _, repo = setup
    r = client.get(f"{P}/browse", headers=alice.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"path", "revision", "children"}
    assert body["path"] == {"components": [], "parent": "", "name": "", "toString": ""}
    assert body["revision"] == "refs/heads/main"
    children = body["children"]
    assert set(children) == PAGE_KEYS and children["isLastPage"] is True
    assert [(c["path"]["toString"], c["type"]) for c in children["values"]] == [
        ("docs", "DIRECTORY"), ("src", "DIRECTORY"), ("README.md", "FILE"), ("bin.dat", "FILE"),
        ("page.html", "FILE")]
    readme = children["values"][2]
    assert readme == {
        "path": {"components": ["README.md"], "parent": "", "name": "README.md",
                 "extension": "md", "toString": "README.md"},
        "contentId": repo.rev("main:README.md"), "type": "FILE", "size": 24}
    assert "size" not in children["values"][0]
    sub = client.get(f"{P}/browse/src?at=refs/heads/main", headers=alice.auth).json()
    assert sub["path"] == {"components": ["src"], "parent": "", "name": "src", "toString": "src"}
    assert sub["revision"] == "refs/heads/main"
    assert [c["path"]["components"] for c in sub["children"]["values"]] == [["lib"], ["app.py"]]
    deep = client.get(f"{P}/browse/src/lib/", headers=alice.auth).json()
    assert deep["path"]["parent"] == "src" and deep["path"]["components"] == ["src", "lib"]
    page = client.get(f"{P}/browse?limit=2&start=1", headers=alice.auth).json()["children"]
    assert [c["path"]["name"] for c in page["values"]] == ["src", "README.md"]
    assert page["isLastPage"] is False and page["nextPageStart"] == 3
    # at a commit, at a tag
    old = client.get(f"{P}/browse/src?at={repo.rev('main~2')}", headers=alice.auth).json()
    assert old["revision"] == repo.rev("main~2")
    assert [c["path"]["name"] for c in old["children"]["values"]] == ["app.py"]
    assert client.get(f"{P}/browse/src?at=v2", headers=alice.auth).status_code == 200


def test_browse_file(setup, client):
    alice, _, _ = setup
    r = client.get(f"{P}/browse/README.md", headers=alice.auth)
    assert r.status_code == 200
    assert r.json() == {"lines": [{"text": "# Widget"}, {"text": "line two"}, {"text": "three"}],
                        "start": 0, "size": 3, "isLastPage": True}
    old = client.get(f"{P}/browse/README.md?at=v1", headers=alice.auth).json()
    assert [line["text"] for line in old["lines"]] == ["# Widget", "line two"]
    # paging by lines, as Jenkins reads it (start += size)
    seen, start = [], 0
    while True:
        body = client.get(f"{P}/browse/docs/big.txt?start={start}&limit=15",
                          headers=alice.auth).json()
        seen += [line["text"] for line in body["lines"]]
        if body["isLastPage"]:
            assert "nextPageStart" not in body
            break
        assert body["nextPageStart"] == start + body["size"]
        start += body["size"]
    assert seen == [f"line {i}" for i in range(1, BIG_LINES + 1)]
    # Renovate's request: limit=20000 is lowered to the maximum, and this file fits
    whole = client.get(f"{P}/browse/docs/big.txt?limit=20000&at=main", headers=alice.auth).json()
    assert whole["isLastPage"] is True and len(whole["lines"]) == BIG_LINES
    binary = client.get(f"{P}/browse/bin.dat", headers=alice.auth).json()
    assert binary["binary"] is True and binary["lines"] == [] and binary["isLastPage"] is True


def test_browse_type_and_head(setup, client):
    alice, _, _ = setup
    assert client.get(f"{P}/browse/src/app.py?type=true",
                      headers=alice.auth).json() == {"type": "FILE"}
    assert client.get(f"{P}/browse/src?type=true&at=main",
                      headers=alice.auth).json() == {"type": "DIRECTORY"}
    assert client.get(f"{P}/browse?type=true", headers=alice.auth).json() == {"type": "DIRECTORY"}
    assert client.head(f"{P}/browse/src/app.py?at=main", headers=alice.auth).status_code == 200
    head = client.head(f"{P}/browse/nope.txt?at=main", headers=alice.auth)
    assert head.status_code == 404 and head.content == b""
    server_error(client.get(f"{P}/browse/src/nope.py?type=true", headers=alice.auth), 404)


def test_browse_refusals(setup, client):
    alice, _, _ = setup
    get = lambda url: client.get(url, headers=alice.auth)  # noqa: E731
    server_error(get(f"{P}/browse/README.md?at=nope"), 404)
    server_error(get(f"{P}/browse/nope/deeper"), 404)
    server_error(get(f"{P}/browse/README.md/x"), 404)
    for bad in (f"{P}/browse/src/%2E%2E/README.md", f"{P}/browse/a%00b",
                f"{P}/browse/README.md?at=main~1", f"{P}/browse/README.md?at=%00",
                f"{P}/browse/README.md?limit=-5", f"{P}/browse/README.md?start=abc",
                f"{P}/browse/README.md?type=yes", f"{P}/raw/%2E%2E/x", f"{P}/files/a%01b"):
        server_error(get(bad), 400)
    # a newline ends the path a route can match: no such resource, in Server's shape
    server_error(get(f"{P}/files/a%0Ab"), 404)


def test_raw(setup, client):
    alice, _, repo = setup
    r = client.get(f"{P}/raw/README.md", headers=alice.auth)
    assert r.status_code == 200 and r.content == b"# Widget\nline two\nthree\n"
    assert r.headers["content-type"] == "text/markdown; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    old = client.get(f"{P}/raw/src/app.py?at={repo.rev('main~2')}", headers=alice.auth)
    assert old.content == b"print('one')\n"
    assert old.headers["content-type"].startswith("text/")
    binary = client.get(f"{P}/raw/bin.dat", headers=alice.auth)
    assert binary.content == b"\x00\x01binary\xff"
    assert binary.headers["content-type"] == "application/octet-stream"
    # a page of HTML in a repository never runs as a page of this site
    html = client.get(f"{P}/raw/page.html", headers=alice.auth)
    assert html.headers["content-type"] == "text/plain; charset=utf-8"
    assert "sandbox" in html.headers["content-security-policy"]
    server_error(client.get(f"{P}/raw/nope", headers=alice.auth), 404)
    server_error(client.get(f"{P}/raw/src", headers=alice.auth), 400)
    server_error(client.get(f"{P}/raw/README.md?at=nope", headers=alice.auth), 404)


def test_files(setup, client):
    alice, _, repo = setup
    r = client.get(f"{P}/files?limit=100", headers=alice.auth)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == PAGE_KEYS
    assert body["values"] == repo.git("ls-tree", "-r", "--name-only", "main").split()
    assert client.get(f"{P}/files/src?at=main", headers=alice.auth).json()["values"] == [
        "app.py", "lib/util.py"]
    page = client.get(f"{P}/files?limit=2&start=1", headers=alice.auth).json()
    assert page["values"] == body["values"][1:3] and page["nextPageStart"] == 3
    assert client.get(f"{P}/files/src?at=v1", headers=alice.auth).json()["values"] == ["app.py"]
    server_error(client.get(f"{P}/files/nope", headers=alice.auth), 404)
    server_error(client.get(f"{P}/files/README.md", headers=alice.auth), 400)


# -- who may read -----------------------------------------------------------------------

READS = ["/branches", "/branches/default", "/tags", "/commits", "/browse", "/browse/README.md",
         "/raw/README.md", "/files"]


@pytest.mark.parametrize("path", READS)
def test_reads_of_a_private_repository(setup, client, world, path):
    alice, bob, _ = setup
    assert client.get(P + path, headers=alice.auth).status_code == 200
    server_error(client.get(P + path, headers=bob.auth), 404)
    server_error(client.get(P + path), 401)
    world.grant_repo(alice, "acme", "widget", "bob", "read")
    assert client.get(P + path, headers=bob.auth).status_code == 200


@pytest.mark.parametrize("path", READS)
def test_reads_of_a_public_repository(setup, client, path):
    alice, bob, _ = setup
    r = client.put("/2.0/repositories/acme/widget", json={"is_private": False}, headers=alice.auth)
    assert r.status_code == 200, r.text
    assert client.get(P + path).status_code == 200
    assert client.get(P + path, headers=bob.auth).status_code == 200
    # reading a public repository does not let anyone write to it
    server_error(client.post(f"{P}/branches", json={"name": "x", "startPoint": "main"},
                             headers=bob.auth), 403)


def test_unknown_project_or_repository(setup, client):
    alice, _, _ = setup
    for url in ("/rest/api/1.0/projects/NOPE/repos/widget/branches",
                "/rest/api/1.0/projects/PRJ/repos/nope/branches",
                "/rest/api/1.0/projects/PR%00J/repos/widget/commits"):
        server_error(client.get(url, headers=alice.auth), 404)


def test_a_key_names_one_project_site_wide(setup, client, world):
    """Keys are unique across the site (migration 0009): another workspace cannot take the
    key, so a Server URL names one repository."""
    alice, _, _ = setup
    assert client.get(f"{P}/branches", headers=alice.auth).status_code == 200
    world.workspace(alice, "other")
    r = client.post("/2.0/workspaces/other/projects", json={"key": "PRJ", "name": "again"},
                    headers=alice.auth)
    assert r.status_code == 400 and "another workspace" in r.json()["error"]["message"]
    assert client.get(f"{P}/branches", headers=alice.auth).status_code == 200


def test_a_ref_moved_meanwhile_wins(setup, client, world, monkeypatch):
    """The ref moves by compare-and-swap: a push that lands between the request's read and
    its update wins, and the request changes nothing (409) but is audited as rejected."""
    from gitward.gitstore import reader

    alice, _, repo = setup
    real = reader.update_ref
    concurrent = repo.rev("main~2")

    def racing(path, ref, new, old, **kwargs):
        repo.git("update-ref", ref, concurrent)  # another push got there first
        return real(path, ref, new, old, **kwargs)

    monkeypatch.setattr(reader, "update_ref", racing)
    server_error(client.post(f"{P}/branches", json={"name": "race", "startPoint": "main"},
                             headers=alice.auth), 409, "changed while")
    assert repo.rev("refs/heads/race") == concurrent
    feature = repo.rev("feature/x")
    server_error(client.request("DELETE", UTILS, json={"name": "feature/x"},
                                headers=alice.auth), 409)
    assert repo.rev("refs/heads/feature/x") == concurrent != feature
    rejected = audit_events(world, "repository.push.rejected")
    assert [e[3]["refs"][0]["ref"] for e in rejected] == ["refs/heads/race",
                                                          "refs/heads/feature/x"]


def test_openapi_describes_the_content_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    # `latest` is the surface's alias of 1.0, not a path parameter.
    base = "/rest/api/1.0/projects/{project_key}/repos/{slug}"
    for path, methods in {
        "/branches": {"get", "post"}, "/branches/default": {"get", "put"}, "/tags": {"get"},
        "/tags/{name}": {"get"}, "/commits": {"get"}, "/commits/{commit_id}": {"get"},
        "/browse": {"get"}, "/browse/{path}": {"get"}, "/raw/{path}": {"get"},
        "/files": {"get"}, "/files/{path}": {"get"},
    }.items():
        assert methods <= set(paths[base + path]), path
    utils = "/rest/branch-utils/1.0/projects/{project_key}/repos/{slug}/branches"
    assert {"post", "delete"} <= set(paths[utils])


def test_links_and_submodules(setup, client):
    """Server's types are FILE, DIRECTORY and SUBMODULE: a symbolic link is a FILE."""
    alice, _, repo = setup
    gitlink = "1234567890abcdef1234567890abcdef12345678"
    stream = (b"commit refs/heads/links\ncommitter Ada <ada@example.com> 1700000500 +0000\n"
              + blob(b"links\n") + b"from " + repo.rev("main").encode() + b"\n"
              + b"M 120000 inline extra/link\n" + blob(b"../README.md")
              + b"M 160000 " + gitlink.encode() + b" extra/sub\n\n")
    subprocess.run(["git", "--git-dir", str(repo.path), "fast-import", "--quiet"], input=stream,
                   check=True, capture_output=True, env=git_env())
    children = client.get(f"{P}/browse/extra?at=links", headers=alice.auth).json()["children"]
    assert [(c["path"]["name"], c["type"], c["contentId"]) for c in children["values"]] == [
        ("link", "FILE", repo.rev("links:extra/link")), ("sub", "SUBMODULE", gitlink)]
    assert children["values"][0]["size"] == len("../README.md")
    assert "size" not in children["values"][1]
    get = lambda url: client.get(url, headers=alice.auth)  # noqa: E731
    assert get(f"{P}/browse/extra/link?at=links&type=true").json() == {"type": "FILE"}
    assert get(f"{P}/browse/extra/sub?at=links&type=true").json() == {"type": "SUBMODULE"}
    assert get(f"{P}/browse/extra/link?at=links").json()["lines"] == [{"text": "../README.md"}]
    assert get(f"{P}/raw/extra/link?at=links").content == b"../README.md"
    server_error(get(f"{P}/browse/extra/sub?at=links"), 400)
    server_error(get(f"{P}/raw/extra/sub?at=links"), 400)
    assert get(f"{P}/files/extra?at=links").json()["values"] == ["link"]
