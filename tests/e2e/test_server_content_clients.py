"""atlassian-python-api's Bitbucket Server client, unchanged, against a running server, with
the real git client on the other side: what REST changes, git sees, and the other way round.

The calls are the client's own (`atlassian/bitbucket/__init__.py`): `get_branches` sends
`details=True&orderBy=MODIFICATION&boostMatches=False`, `delete_branch` a JSON body to
`/rest/branch-utils/1.0/…`, `set_default_branch` `{"id": "refs/heads/…"}`; paged calls follow
`isLastPage`/`nextPageStart`.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from atlassian import Bitbucket
from requests import HTTPError

pytestmark = pytest.mark.e2e


@pytest.fixture
def content(gitward_server, tmp_path):
    server = gitward_server
    owner = server.create_user()
    workspace = server.unique("ws")
    key = "C" + uuid.uuid4().hex[:8].upper()  # keys are addressed site-wide by the Server API
    r = server.api("POST", "/2.0/workspaces", auth=owner, json={"slug": workspace, "name": "W"})
    assert r.status_code == 201, r.text
    r = server.api("POST", f"/2.0/workspaces/{workspace}/projects", auth=owner,
                   json={"key": key, "name": "Content"})
    assert r.status_code == 201, r.text
    slug = "content"
    r = server.api("POST", f"/2.0/repositories/{workspace}/{slug}", auth=owner,
                   json={"scm": "git", "project": {"key": key}, "is_private": True})
    assert r.status_code == 200, r.text
    work = tmp_path / "work"
    server.git("clone", "-q", server.clone_url(workspace, slug, owner), str(work))
    (work / "README").write_text("hello\nworld\n")
    (work / "src").mkdir()
    (work / "src" / "a.py").write_text("a = 1\n")
    server.git("add", "-A", cwd=work)
    server.git("commit", "-qm", "first", cwd=work)
    (work / "src" / "a.py").write_text("a = 2\n")
    server.git("commit", "-qam", "second", cwd=work)
    server.git("tag", "-a", "v1", "-m", "release one", cwd=work)
    server.git("push", "-q", "origin", "HEAD:main", "v1", cwd=work)
    client = Bitbucket(url=server.base_url, username=owner.username, password=owner.password)
    return server, owner, key, slug, work, client


def remote_refs(server, work) -> dict[str, str]:
    out = server.git("ls-remote", "origin", cwd=work).stdout
    return {ref: sha for sha, ref in (line.split("\t") for line in out.splitlines())}


def test_the_client_reads_what_git_pushed(content):
    server, _, key, slug, work, bb = content
    head = server.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    branches = list(bb.get_branches(key, slug))
    assert [(b["displayId"], b["latestCommit"], b["isDefault"]) for b in branches] == [
        ("main", head, True)]
    meta = branches[0]["metadata"]
    assert meta["com.atlassian.bitbucket.server.bitbucket-branch:latest-commit-metadata"][
        "message"] == "second"
    assert bb.get_default_branch(key, slug)["displayId"] == "main"
    tags = list(bb.get_tags(key, slug))
    assert [(t["displayId"], t["latestCommit"]) for t in tags] == [("v1", head)]
    assert bb.get_project_tags(key, slug, "v1")["hash"] == server.git(
        "rev-parse", "v1", cwd=work).stdout.strip()
    log = server.git("log", "--format=%H", cwd=work).stdout.split()
    assert [c["id"] for c in bb.get_commits(key, slug)] == log
    assert [c["id"] for c in bb.get_commits(key, slug, path="README")] == log[1:]
    assert bb.get_commit_info(key, slug, head)["parents"][0]["id"] == log[1]
    assert bb.get_content_of_file(key, slug, "src/a.py") == b"a = 2\n"
    assert bb.get_content_of_file(key, slug, "src/a.py", at=log[1]) == b"a = 1\n"
    assert sorted(bb.get_file_list(key, slug)) == ["README", "src/a.py"]


def test_branches_made_over_rest_are_seen_by_git(content):
    server, _, key, slug, work, bb = content
    head = server.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    created = bb.create_branch(key, slug, "topic", "main", message="from REST")
    assert created["id"] == "refs/heads/topic" and created["latestCommit"] == head
    assert remote_refs(server, work)["refs/heads/topic"] == head
    # git builds on it, REST sees the push
    server.git("fetch", "-q", "origin", cwd=work)
    server.git("checkout", "-q", "-b", "topic", "origin/topic", cwd=work)
    (work / "t.txt").write_text("t\n")
    server.git("add", "t.txt", cwd=work)
    server.git("commit", "-qm", "on topic", cwd=work)
    server.git("push", "-q", "origin", "topic", cwd=work)
    topic = server.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert [b["latestCommit"] for b in bb.get_branches(key, slug, filter="topic")] == [topic]
    bb.set_default_branch(key, slug, "refs/heads/topic")
    assert bb.get_default_branch(key, slug)["displayId"] == "topic"
    assert server.git("ls-remote", "--symref", "origin", "HEAD",
                      cwd=work).stdout.startswith("ref: refs/heads/topic\tHEAD")
    bb.set_default_branch(key, slug, "refs/heads/main")
    bb.delete_branch(key, slug, "topic", end_point=topic)
    assert "refs/heads/topic" not in remote_refs(server, work)


def test_a_read_only_token_cannot_create_a_branch(content):
    server, owner, key, slug, work, _ = content
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{owner.username}", auth=owner,
                   json={"name": "ci", "permissions": ["REPO_READ"]})
    assert r.status_code == 200, r.text
    reader = Bitbucket(url=server.base_url, token=r.json()["token"])
    assert [b["displayId"] for b in reader.get_branches(key, slug)] == ["main"]
    with pytest.raises(HTTPError) as refused:
        reader.create_branch(key, slug, "nope", "main")
    assert refused.value.response.status_code == 403
    assert "REPO_WRITE" in str(refused.value)
    with pytest.raises(HTTPError) as refused:
        reader.delete_branch(key, slug, "main")
    assert refused.value.response.status_code == 403
    assert "refs/heads/nope" not in remote_refs(server, work)


def test_the_client_finds_projects_and_repositories(content):
    """The client's project and repository calls (`project`, `project_list`, `repo_list`,
    `get_repo`, `repo_all_list`), and a repository it creates is one git clones."""
    server, owner, key, slug, work, bb = content
    assert bb.project(key)["key"] == key
    assert key in [p["key"] for p in bb.project_list()]
    assert [r["slug"] for r in bb.repo_list(key)] == [slug]
    repo = bb.get_repo(key, slug)
    assert repo["project"]["key"] == key and repo["scmId"] == "git"
    clone = {link["name"]: link["href"] for link in repo["links"]["clone"]}
    assert clone["http"].endswith(f"/scm/{key}/{slug}.git")
    created = bb.create_repo(key, "made-by-client")
    assert created["slug"] == "made-by-client"
    assert sorted(r["slug"] for r in bb.repo_all_list(key)) == [slug, "made-by-client"]
    credentials = f"{quote(owner.username, safe='')}:{quote(owner.password, safe='')}@"
    url = clone["http"].replace("://", f"://{credentials}", 1)
    target = work.parent / "made"
    server.git("clone", "-q", url.replace(f"/{slug}.git", "/made-by-client.git"), str(target))
    assert (target / ".git").is_dir()
