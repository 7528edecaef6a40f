"""gitstore/reader.fast_forwards: which updates of a push are fast-forwards, as git has it,
with the push's new objects read from its quarantine (another object directory)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.reader import ZERO_ID, fast_forwards
from gitward.gitstore.store import git_env

ENV = {**git_env(), "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com",
       "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.com"}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True,
                          env={**ENV, **(env or {})}, capture_output=True,
                          input=b"").stdout.decode().strip()


def commit(repo: Path, message: str, *parents: str, env: dict[str, str] | None = None) -> str:
    tree = git(repo, "write-tree", env={"GIT_INDEX_FILE": str(repo / "empty-index"), **(env or {})})
    args = [arg for parent in parents for arg in ("-p", parent)]
    return git(repo, "commit-tree", tree, "-m", message, *args, env=env)


def test_fast_forwards_forced_updates_and_what_is_left_out(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, env=ENV)
    first = commit(repo, "first")
    second = commit(repo, "second", first)
    sideways = commit(repo, "sideways", first)
    tag_object = subprocess.run(
        ["git", "--git-dir", str(repo), "mktag"], check=True, env=ENV, capture_output=True,
        input=(f"object {second}\ntype commit\ntag v1\ntagger A <a@example.com> 0 +0000\n\nv1\n"
               ).encode()).stdout.decode().strip()
    # The push's new commit lives only in its quarantine, as while pre-receive runs.
    quarantine = repo / "objects" / "tmp_objdir-incoming-test"
    quarantine.mkdir()
    in_quarantine = {"GIT_OBJECT_DIRECTORY": str(quarantine),
                     "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo / "objects")}
    ahead = commit(repo, "ahead", second, env=in_quarantine)
    updates = [
        RefUpdate(first, second, "refs/heads/forward"),
        RefUpdate(second, sideways, "refs/heads/forced"),
        RefUpdate(second, first, "refs/heads/back"),
        RefUpdate(second, second, "refs/heads/same"),
        RefUpdate(second, ahead, "refs/heads/quarantined"),
        RefUpdate(first, tag_object, "refs/tags/v1"),
        RefUpdate(first, "1" * 40, "refs/heads/missing"),
        RefUpdate(ZERO_ID, second, "refs/heads/created"),
        RefUpdate(second, ZERO_ID, "refs/heads/deleted"),
    ]
    assert fast_forwards(repo, quarantine, updates) == {
        "refs/heads/forward": True,
        "refs/heads/forced": False,
        "refs/heads/back": False,
        "refs/heads/same": True,
        "refs/heads/quarantined": True,
        "refs/tags/v1": False,
        "refs/heads/missing": False,
    }
    # Without the quarantine, the new commit cannot be read: not a fast-forward.
    assert fast_forwards(repo, None, updates[4:5]) == {"refs/heads/quarantined": False}
