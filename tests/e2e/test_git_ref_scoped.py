"""Ref-scoped tokens with the real git client: the refs outside a token's patterns, forced
updates and deletions of a fast-forward-only token are refused per ref, with the reason
`git push` prints for each, and nothing of such a push is applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import GitwardServer, User


@pytest.fixture(scope="module")
def world(gitward_server: GitwardServer):
    server = gitward_server
    owner = server.create_user()
    workspace, slug = server.create_repository(owner)
    server.seed(owner, workspace, slug)
    return server, owner, workspace, slug


def pat(server: GitwardServer, user: User, **extra) -> User:
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{user.username}", auth=user,
                   json={"name": "bot", "permissions": ["REPO_WRITE"], **extra})
    assert r.status_code == 200, r.text
    return User(user.username, r.json()["token"])


def clone(server: GitwardServer, workspace: str, slug: str, who: User, where: Path) -> Path:
    server.git("clone", "-q", server.clone_url(workspace, slug, who), str(where))
    server.git("config", "user.email", "bot@example.com", cwd=where)
    server.git("config", "user.name", "Bot", cwd=where)
    return where


def commit(server: GitwardServer, repo: Path, name: str) -> None:
    (repo / name).write_text(name)
    server.git("add", name, cwd=repo)
    server.git("commit", "-qm", name, cwd=repo)


def test_patterns_allow_their_refs_and_refuse_others_by_name(world, tmp_path):
    server, owner, workspace, slug = world
    bot = pat(server, owner, refPatterns=["refs/heads/bot/*", "refs/tags/v*"])
    repo = clone(server, workspace, slug, bot, tmp_path / "c")
    commit(server, repo, "x.txt")
    server.git("push", "-q", "origin", "HEAD:refs/heads/bot/x", cwd=repo)
    before = server.branches(owner, workspace, slug)
    assert "bot/x" in before

    refused = server.git("push", "origin", "HEAD:main", cwd=repo, check=False)
    assert refused.returncode != 0
    assert ("! [remote rejected] HEAD -> main (this token may only update refs matching "
            "refs/heads/bot/*, refs/tags/v*)") in refused.stderr, refused.stderr
    assert server.branches(owner, workspace, slug) == before


def test_a_push_with_one_refused_ref_applies_none(world, tmp_path):
    server, owner, workspace, slug = world
    bot = pat(server, owner, refPatterns=["refs/heads/bot/*"])
    repo = clone(server, workspace, slug, bot, tmp_path / "c")
    commit(server, repo, "both.txt")
    before = server.branches(owner, workspace, slug)
    result = server.git("push", "origin", "HEAD:refs/heads/bot/both", "HEAD:refs/heads/other",
                        cwd=repo, check=False)
    assert result.returncode != 0
    assert "HEAD -> other (this token may only update refs matching refs/heads/bot/*)" \
        in result.stderr, result.stderr
    assert ("HEAD -> bot/both (not applied: another ref of this push was refused)"
            in result.stderr), result.stderr
    assert "refs/heads/other: this token may only update" in result.stderr  # remote: lines
    assert server.branches(owner, workspace, slug) == before


def test_fast_forward_only_refuses_forced_updates_and_deletions(world, tmp_path):
    server, owner, workspace, slug = world
    bot = pat(server, owner, refPatterns=["refs/heads/ff/*"], fastForwardOnly=True)
    repo = clone(server, workspace, slug, bot, tmp_path / "c")
    commit(server, repo, "one.txt")
    server.git("push", "-q", "origin", "HEAD:refs/heads/ff/a", cwd=repo)  # created
    commit(server, repo, "two.txt")
    server.git("push", "-q", "origin", "HEAD:refs/heads/ff/a", cwd=repo)  # fast-forward
    at = server.branches(owner, workspace, slug)["ff/a"]

    server.git("reset", "-q", "--hard", "HEAD~1", cwd=repo)
    commit(server, repo, "other.txt")
    forced = server.git("push", "--force", "origin", "HEAD:refs/heads/ff/a", cwd=repo,
                        check=False)
    assert forced.returncode != 0
    assert ("(this token may only fast-forward refs: this is a forced update)"
            in forced.stderr), forced.stderr
    deleted = server.git("push", "origin", ":refs/heads/ff/a", cwd=repo, check=False)
    assert deleted.returncode != 0
    assert "(this token may only fast-forward refs, not delete them)" in deleted.stderr
    assert server.branches(owner, workspace, slug)["ff/a"] == at


def test_a_repository_token_pushes_only_its_tags(world, tmp_path):
    server, owner, workspace, slug = world
    r = server.api("POST", f"/2.0/repositories/{workspace}/{slug}/access-tokens", auth=owner,
                   json={"name": "release", "scopes": ["repository:write"],
                         "ref_patterns": ["refs/tags/v*"]})
    assert r.status_code == 201, r.text
    bot = User("x-token-auth", r.json()["token"])
    repo = clone(server, workspace, slug, bot, tmp_path / "c")
    server.git("tag", "v1.0", cwd=repo)
    server.git("push", "-q", "origin", "v1.0", cwd=repo)
    server.git("tag", "nightly", cwd=repo)
    refused = server.git("push", "origin", "nightly", cwd=repo, check=False)
    assert refused.returncode != 0
    assert ("! [remote rejected] nightly -> nightly (this token may only update refs matching "
            "refs/tags/v*)") in refused.stderr, refused.stderr
    tags = server.api("GET", f"/2.0/repositories/{workspace}/{slug}/refs/tags", auth=owner)
    assert [t["name"] for t in tags.json()["values"]] == ["v1.0"]
