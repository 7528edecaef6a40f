"""Cloud repository content: refs, commits, src, diff and diffstat, on SQLite and PostgreSQL.

Shapes are checked field by field against Bitbucket Cloud's API reference examples (the
`branch`, `tag`, `commit`, `commit_file`, `commit_directory` and `diffstat` objects of
developer.atlassian.com/cloud/bitbucket/rest) and what atlassian-python-api reads from them
(`atlassian/bitbucket/cloud/repositories/refs.py`: `name`, `hash` as `target.hash`,
`links.self.href`; `commits.py`: `hash`, `message`, `date`, `author.raw`, `parents`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from gitward.gitstore.store import git_env
from gitward.storage.models import AuditEvent
from tests.integration.api_checks import BASE, cloud_error, cloud_object

R = "/2.0/repositories/acme/site"


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Ann Author", "-c", "user.email=ann@example.com", *args],
        cwd=cwd, env=git_env(), check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(world, client, runtime, tmp_path):
    """acme/site with three commits on main and a branch feature/login with one more."""
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    body = world.repository(alice, "acme", "site", "WEB")
    bare = runtime.git.path_of(body["uuid"].strip("{}") + ".git")
    work = tmp_path / "work"
    _git("init", "-q", "-b", "main", str(work))
    (work / "README.md").write_text("# Site\n")
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "First commit", cwd=work)
    (work / "docs").mkdir()
    (work / "docs" / "guide.md").write_text("one\ntwo\n")
    (work / "run.sh").write_text("#!/bin/sh\n")
    (work / "run.sh").chmod(0o755)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "Add docs\n\nWith a body.", cwd=work)
    (work / "docs" / "guide.md").write_text("one\n2\nthree\n")
    _git("commit", "-q", "-am", "Edit guide", cwd=work)
    _git("checkout", "-q", "-b", "feature/login", cwd=work)
    (work / "login.py").write_bytes(b"print('hi')\n")
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "Login", cwd=work)
    _git("tag", "v1", "main", cwd=work)
    _git("push", "-q", str(bare), "main", "feature/login", "v1", cwd=work)
    heads = {
        name: _git("rev-parse", name, cwd=work)
        for name in ("main", "main~1", "main~2", "feature/login")
    }
    return alice, bob, heads


def _commit_shape(c, hash_):
    """A Cloud `commit`, field by field."""
    assert c["type"] == "commit" and c["hash"] == hash_
    assert c["author"] == {"type": "author", "raw": "Ann Author <ann@example.com>"}
    assert c["date"][:4].isdigit() and "T" in c["date"]
    assert c["summary"]["raw"] == c["message"] and c["summary"]["type"] == "rendered"
    assert c["repository"]["full_name"] == "acme/site" and c["repository"]["type"] == "repository"
    for parent in c["parents"]:
        assert parent["type"] == "commit" and len(parent["hash"]) == 40
        assert parent["links"]["self"]["href"] == f"{BASE}{R}/commit/{parent['hash']}"
    assert c["links"]["self"]["href"] == f"{BASE}{R}/commit/{hash_}"
    assert c["links"]["diff"]["href"] == f"{BASE}{R}/diff/{hash_}"


def test_branches_list_get_and_their_self_links(client, repo):
    alice, _, heads = repo
    r = client.get(f"{R}/refs/branches", headers=alice.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["size"] == 2 and body["page"] == 1 and body["pagelen"] == 10
    names = [b["name"] for b in body["values"]]
    assert names == ["feature/login", "main"]
    for branch in body["values"]:
        cloud_object(branch, "branch")
        _commit_shape(branch["target"], heads[branch["name"]])
        assert branch["links"]["commits"]["href"] == f"{BASE}{R}/commits/{branch['name']}"
        again = client.get(branch["links"]["self"]["href"][len(BASE):], headers=alice.auth)
        assert again.status_code == 200 and again.json() == branch
    assert client.get(f"{R}/refs/branches/feature/login", headers=alice.auth).json()[
        "target"]["hash"] == heads["feature/login"]
    cloud_error(client.get(f"{R}/refs/branches/nope", headers=alice.auth), 404)
    r = client.get(f"{R}/refs/branches", params={"q": 'name ~ "LOGIN"'}, headers=alice.auth)
    assert [b["name"] for b in r.json()["values"]] == ["feature/login"]
    r = client.get(f"{R}/refs/branches", params={"sort": "-target.date"}, headers=alice.auth)
    assert r.json()["values"][0]["name"] == "feature/login"
    cloud_error(client.get(f"{R}/refs/branches", params={"q": "size > 1"}, headers=alice.auth),
                400, 'Field "size" does not support filtering')


def test_refs_and_tags(client, repo):
    alice, _, heads = repo
    r = client.get(f"{R}/refs", headers=alice.auth)
    assert [(v["type"], v["name"]) for v in r.json()["values"]] == [
        ("branch", "feature/login"), ("branch", "main"), ("tag", "v1")]
    tag = client.get(f"{R}/refs/tags/v1", headers=alice.auth).json()
    cloud_object(tag, "tag")
    _commit_shape(tag["target"], heads["main"])
    assert tag["links"]["self"]["href"] == f"{BASE}{R}/refs/tags/v1"
    assert client.get(f"{R}/refs/tags", headers=alice.auth).json()["size"] == 1


def test_create_and_delete_branches_and_tags_as_pushes(client, runtime, repo):
    alice, bob, heads = repo
    r = client.post(f"{R}/refs/branches", json={"name": "release/1.0",
                                                "target": {"hash": heads["main~1"]}},
                    headers=alice.auth)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "release/1.0" and r.json()["target"]["hash"] == heads["main~1"]
    r = client.post(f"{R}/refs/branches", json={"name": "from-name", "target": {"hash": "main"}},
                    headers=alice.auth)
    assert r.json()["target"]["hash"] == heads["main"]
    cloud_error(client.post(f"{R}/refs/branches", json={"name": "main", "target": {"hash": "main"}},
                            headers=alice.auth), 400, "already exists")
    cloud_error(client.post(f"{R}/refs/branches", json={"name": "x..y", "target": {"hash": "main"}},
                            headers=alice.auth), 400)
    cloud_error(client.post(f"{R}/refs/branches", json={"name": "ok", "target": {}},
                            headers=alice.auth), 400, "target")
    cloud_error(client.post(f"{R}/refs/branches", json={"name": "ok", "target": {"hash": "f" * 40}},
                            headers=alice.auth), 404)
    # Bob may read after a grant, but not write: the push check refuses, and it is audited.
    world_grant = client.put(f"{R}/permissions-config/users/bob", json={"permission": "read"},
                             headers=alice.auth)
    assert world_grant.status_code in (200, 201)
    cloud_error(client.post(f"{R}/refs/branches", json={"name": "b", "target": {"hash": "main"}},
                            headers=bob.auth), 403)
    cloud_error(client.delete(f"{R}/refs/branches/release/1.0", headers=bob.auth), 403)
    # ... told so before anything about the target (not "does not exist"; nothing audited:
    # no ref change was planned).
    for target in ({"hash": "no-such-branch"}, {}):
        for what in ("branches", "tags"):
            cloud_error(client.post(f"{R}/refs/{what}", json={"name": "b", "target": target},
                                    headers=bob.auth), 403)
    assert client.delete(f"{R}/refs/branches/release/1.0", headers=alice.auth).status_code == 204
    cloud_error(client.get(f"{R}/refs/branches/release/1.0", headers=alice.auth), 404)
    cloud_error(client.delete(f"{R}/refs/branches/main", headers=alice.auth), 400, "main branch")
    r = client.post(f"{R}/refs/tags", json={"name": "v2", "target": {"hash": heads["main~2"]}},
                    headers=alice.auth)
    assert r.status_code == 201 and r.json()["target"]["hash"] == heads["main~2"]
    assert client.delete(f"{R}/refs/tags/v2", headers=alice.auth).status_code == 204
    cloud_error(client.delete(f"{R}/refs/tags/v2", headers=alice.auth), 404)
    with runtime.unit_of_work() as store:
        rows = store.open().scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        events = [(e.action, e.actor) for e in rows if e.action.startswith("repository.push")]
    assert events == [
        ("repository.push", "user:alice"), ("repository.push", "user:alice"),
        ("repository.push.refused", "user:bob"), ("repository.push.refused", "user:bob"),
        ("repository.push", "user:alice"), ("repository.push", "user:alice"),
        ("repository.push", "user:alice"),
    ]


def test_commits_listing(client, repo):
    alice, _, heads = repo
    r = client.get(f"{R}/commits/main", headers=alice.auth)
    body = r.json()
    assert [c["hash"] for c in body["values"]] == [heads["main"], heads["main~1"], heads["main~2"]]
    _commit_shape(body["values"][0], heads["main"])
    assert "next" not in body and "size" not in body
    r = client.get(f"{R}/commits", headers=alice.auth)  # every branch and tag
    assert {c["hash"] for c in r.json()["values"]} == set(heads.values())
    assert len(r.json()["values"]) == 4
    r = client.get(f"{R}/commits", params={"include": "feature/login", "exclude": "main"},
                   headers=alice.auth)
    assert [c["hash"] for c in r.json()["values"]] == [heads["feature/login"]]
    r = client.get(f"{R}/commits/main", params={"path": "docs/guide.md"}, headers=alice.auth)
    assert [c["hash"] for c in r.json()["values"]] == [heads["main"], heads["main~1"]]
    r = client.get(f"{R}/commits/main", params={"pagelen": 2}, headers=alice.auth)
    assert len(r.json()["values"]) == 2 and "page=2" in r.json()["next"]
    r = client.post(f"{R}/commits", data={"include": "feature/login", "exclude": "main"},
                    headers=alice.auth)
    assert r.status_code == 200, r.text
    assert [c["hash"] for c in r.json()["values"]] == [heads["feature/login"]]
    one = client.get(f"{R}/commit/{heads['main~1']}", headers=alice.auth).json()
    _commit_shape(one, heads["main~1"])
    assert one["message"].startswith("Add docs") and one["parents"][0]["hash"] == heads["main~2"]
    cloud_error(client.get(f"{R}/commit/main~1", headers=alice.auth), 400)
    cloud_error(client.get(f"{R}/commit/{'0' * 40}", headers=alice.auth), 404)


def test_src_files_directories_and_meta(client, repo):
    alice, _, heads = repo
    main = heads["main"]
    r = client.get(f"{R}/src/{main}/docs/guide.md", headers=alice.auth)
    assert r.status_code == 200 and r.content == b"one\n2\nthree\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    # A branch with a slash, percent-encoded in its segment (as atlassian-python-api sends it).
    r = client.get(f"{R}/src/feature%2Flogin/login.py", headers=alice.auth)
    assert r.status_code == 200 and r.content == b"print('hi')\n"
    root = client.get(f"{R}/src", headers=alice.auth).json()
    assert [(v["type"], v["path"]) for v in root["values"]] == [
        ("commit_directory", "docs"), ("commit_file", "README.md"), ("commit_file", "run.sh")]
    readme = root["values"][1]
    assert readme["size"] == len("# Site\n") and readme["commit"]["hash"] == main
    assert readme["links"]["self"]["href"] == f"{BASE}{R}/src/{main}/README.md"
    assert readme["links"]["meta"]["href"] == f"{BASE}{R}/src/{main}/README.md?format=meta"
    assert root["values"][2]["attributes"] == ["executable"]
    docs = client.get(root["values"][0]["links"]["self"]["href"][len(BASE):], headers=alice.auth)
    assert [v["path"] for v in docs.json()["values"]] == ["docs/guide.md"]
    meta = client.get(f"{R}/src/main/docs/guide.md", params={"format": "meta"},
                      headers=alice.auth).json()
    assert meta["type"] == "commit_file" and meta["path"] == "docs/guide.md"
    assert meta["commit"]["hash"] == main and meta["size"] == 12
    meta = client.get(f"{R}/src/main/docs", params={"format": "meta"}, headers=alice.auth).json()
    assert meta["type"] == "commit_directory"
    cloud_error(client.get(f"{R}/src/main/nope.txt", headers=alice.auth), 404)
    cloud_error(client.get(f"{R}/src/main/../etc", headers=alice.auth), 404)
    cloud_error(client.get(f"{R}/src/main/docs", params={"format": "x"}, headers=alice.auth), 400)


def test_diff_and_diffstat(client, repo):
    alice, _, heads = repo
    r = client.get(f"{R}/diff/{heads['main']}", headers=alice.auth)
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "diff --git a/docs/guide.md b/docs/guide.md" in r.text
    assert "-two\n+2\n+three" in r.text
    r = client.get(f"{R}/diff/feature/login..main", headers=alice.auth)
    assert "login.py" in r.text and "guide.md" not in r.text
    r = client.get(f"{R}/diffstat/{heads['main~1']}", headers=alice.auth)
    stats = {v["new"]["path"]: v for v in r.json()["values"]}
    assert set(stats) == {"docs/guide.md", "run.sh"}
    guide = stats["docs/guide.md"]
    assert guide["type"] == "diffstat" and guide["status"] == "added"
    assert guide["lines_added"] == 2 and guide["lines_removed"] == 0 and guide["old"] is None
    assert guide["new"]["links"]["self"]["href"] == f"{BASE}{R}/src/{heads['main~1']}/docs/guide.md"
    r = client.get(f"{R}/diffstat/{heads['main']}", headers=alice.auth)
    (modified,) = r.json()["values"]
    assert modified["status"] == "modified" and modified["lines_removed"] == 1
    assert modified["old"]["links"]["self"]["href"].endswith(f"/src/{heads['main~1']}/docs/guide.md")
    cloud_error(client.get(f"{R}/diff/nope", headers=alice.auth), 404)


def test_content_is_hidden_from_those_who_cannot_read(client, repo):
    _, bob, heads = repo
    for path in ("/refs/branches", "/refs/branches/main", "/commits", f"/commit/{heads['main']}",
                 "/src", f"/diff/{heads['main']}", "/refs/tags/v1"):
        cloud_error(client.get(R + path, headers=bob.auth), 404)
        cloud_error(client.get(R + path), 401)


def test_an_empty_repository(world, client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    world.repository(alice, "acme", "site", "WEB")
    assert client.get(f"{R}/src", headers=alice.auth).json()["values"] == []
    assert client.get(f"{R}/commits", headers=alice.auth).json()["values"] == []
    assert client.get(f"{R}/refs", headers=alice.auth).json()["size"] == 0
