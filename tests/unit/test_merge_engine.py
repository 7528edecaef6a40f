"""The merge engine on temporary bare repositories: git's own merge, no work tree, no ref moved."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from gitward.gitstore import merge as git_merge
from gitward.gitstore.merge import Identity
from gitward.gitstore.store import GitStore, git_env


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Ann Author", "-c", "user.email=ann@example.com", *args],
        cwd=cwd, env=git_env(), check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


class Repo:
    """A bare repository in a GitStore and a scratch clone to make commits in."""

    def __init__(self, tmp: Path) -> None:
        self.store = GitStore(tmp / "store")
        self.name = f"{uuid.uuid4()}.git"
        self.bare = self.store.create(self.name)
        self.work = tmp / "work"
        _git("init", "-q", "-b", "main", str(self.work))

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        for name, text in files.items():
            target = self.work / name
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        _git("add", "-A", cwd=self.work)
        _git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        return _git("rev-parse", "HEAD", cwd=self.work)

    def branch(self, name: str, start: str = "main") -> None:
        _git("checkout", "-q", "-B", name, start, cwd=self.work)

    def push(self) -> None:
        _git("push", "-q", "--force", str(self.bare), "--all", cwd=self.work)

    def refs(self) -> str:
        return _git("--git-dir", str(self.bare), "for-each-ref")

    def tree(self, commit: str) -> str:
        return _git("--git-dir", str(self.bare), "rev-parse", f"{commit}^{{tree}}")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def _diverged(repo: Repo, main: dict[str, str | None], side: dict[str, str | None],
              base: dict[str, str | None] | None = None) -> tuple[str, str]:
    repo.commit(base or {"a.txt": "a\n", "b.txt": "b\n", "shared.txt": "1\n2\n3\n4\n5\n"}, "base")
    repo.branch("side")
    source = repo.commit(side, "side")
    repo.branch("main")
    destination = repo.commit(main, "main")
    repo.push()
    return source, destination


def test_a_conflict_names_its_files_sorted_and_moves_nothing(repo):
    source, destination = _diverged(
        repo,
        main={"shared.txt": "1\nmain\n3\n4\n5\n", "z dir/é.txt": "main\n", "a.txt": "main\n"},
        side={"shared.txt": "1\nside\n3\n4\n5\n", "z dir/é.txt": "side\n", "a.txt": "side\n",
              "clean.txt": "new\n"},
    )
    before = repo.refs()
    check = git_merge.check(repo.store, repo.name, source, destination)
    assert check.conflicted
    assert check.conflicts == ("a.txt", "shared.txt", "z dir/é.txt")
    assert not check.fast_forward and not check.merged
    assert repo.refs() == before


def test_a_modify_delete_conflict_is_reported_too(repo):
    source, destination = _diverged(repo, main={"a.txt": None}, side={"a.txt": "edited\n"})
    check = git_merge.check(repo.store, repo.name, source, destination)
    assert check.conflicted and check.conflicts == ("a.txt",)


@pytest.mark.parametrize(("main", "side"), [
    ({"a.txt": "main\n"}, {"b.txt": "side\n", "new/dir/c.txt": "c\n"}),
    # both edit one file in different places: a content merge without conflict
    ({"shared.txt": "one\n2\n3\n4\n5\n"}, {"shared.txt": "1\n2\n3\n4\nfive\n"}),
    # a rename on one side and an edit of the renamed file on the other
    ({"shared.txt": "1\n2\n3\n4\nfive\n"},
     {"shared.txt": None, "moved/shared.txt": "1\n2\n3\n4\n5\n", "b.txt": None}),
])
def test_a_clean_merge_has_the_tree_git_merge_no_ff_makes(repo, main, side):
    source, destination = _diverged(repo, main, side)
    found = git_merge.outcome(repo.bare, source, destination)
    assert found.check == git_merge.Check(False, (), False, False)
    _git("merge", "-q", "--no-ff", "--no-edit", "side", cwd=repo.work)
    expected = _git("rev-parse", "HEAD^{tree}", cwd=repo.work)
    assert found.tree == expected
    assert _git("--git-dir", str(repo.bare), "cat-file", "-t", found.tree) == "tree"


def test_commit_tree_writes_the_commit_it_is_asked_for(repo):
    source, destination = _diverged(repo, {"a.txt": "main\n"}, {"b.txt": "side\n"})
    found = git_merge.outcome(repo.bare, source, destination)
    person = Identity("Zoë <Merger>\n", "zoe@example.com")
    commit = git_merge.commit_tree(repo.bare, found.tree, (destination, source),
                                   "Merged in side\n\nWith a body.", person)
    show = _git("--git-dir", str(repo.bare), "show", "-s",
                "--format=%T|%P|%an|%ae|%cn|%ce|%B", commit)
    assert show == (f"{found.tree}|{destination} {source}|Zoë Merger|zoe@example.com|"
                    "Zoë Merger|zoe@example.com|Merged in side\n\nWith a body.")
    squash = git_merge.commit_tree(repo.bare, found.tree, (destination,), "Squashed", person)
    assert _git("--git-dir", str(repo.bare), "show", "-s", "--format=%P", squash) == destination
    assert repo.tree(squash) == found.tree


def test_fast_forward_and_merged(repo):
    base = repo.commit({"a.txt": "a\n"}, "base")
    ahead = repo.commit({"a.txt": "b\n"}, "ahead")
    repo.push()
    ff = git_merge.check(repo.store, repo.name, ahead, base)
    assert ff == git_merge.Check(False, (), True, False)
    assert git_merge.outcome(repo.bare, ahead, base).tree == repo.tree(ahead)
    merged = git_merge.check(repo.store, repo.name, base, ahead)
    assert merged == git_merge.Check(False, (), False, True)
    same = git_merge.check(repo.store, repo.name, ahead, ahead)
    assert same.merged and same.fast_forward and not same.conflicted
    assert git_merge.is_ancestor(repo.bare, base, ahead)
    assert not git_merge.is_ancestor(repo.bare, ahead, base)


def test_unrelated_histories_merge_as_git_allows_them(repo):
    mine = repo.commit({"a.txt": "a\n", "both.txt": "mine\n"}, "mine")
    _git("checkout", "-q", "--orphan", "other", cwd=repo.work)
    _git("rm", "-q", "-rf", ".", cwd=repo.work)
    theirs = repo.commit({"b.txt": "b\n", "both.txt": "theirs\n"}, "theirs")
    repo.push()
    check = git_merge.check(repo.store, repo.name, theirs, mine)
    assert check.conflicted and check.conflicts == ("both.txt",)
    assert not check.merged and not check.fast_forward


@pytest.mark.parametrize("bad", ["--output=/tmp/x", "-p", "HEAD", "main", "abc123",
                                 "g" * 40, "a" * 41, " " + "a" * 39, "", "a" * 40 + "\n"])
def test_only_full_commit_ids_reach_git(repo, bad):
    commit = repo.commit({"a.txt": "a\n"})
    repo.push()
    with pytest.raises(git_merge.BadCommitId):
        git_merge.check(repo.store, repo.name, bad, commit)
    with pytest.raises(git_merge.BadCommitId):
        git_merge.check(repo.store, repo.name, commit, bad)
    with pytest.raises(git_merge.BadCommitId):
        git_merge.commit_tree(repo.bare, bad, (), "m", Identity("a", "b"))


def test_an_id_that_is_no_commit_is_unknown(repo):
    commit = repo.commit({"a.txt": "a\n"})
    repo.push()
    with pytest.raises(git_merge.UnknownCommit, match=r"f{40} does not exist"):
        git_merge.check(repo.store, repo.name, "f" * 40, commit)
    tree = repo.tree(commit)  # an object, but not a commit
    with pytest.raises(git_merge.UnknownCommit):
        git_merge.check(repo.store, repo.name, commit, tree)
    # upper case is the same id
    assert git_merge.check(repo.store, repo.name, commit.upper(), commit).merged


def test_a_git_that_takes_too_long_is_a_clean_error(repo, monkeypatch):
    source, destination = _diverged(repo, {"a.txt": "main\n"}, {"b.txt": "side\n"})
    real = subprocess.run

    def slow(args, **kwargs):
        if "merge-tree" in args:
            assert kwargs["timeout"] == git_merge.MERGE_TIMEOUT_SECONDS
            raise subprocess.TimeoutExpired(args, kwargs["timeout"])
        return real(args, **kwargs)

    monkeypatch.setattr(git_merge.subprocess, "run", slow)
    with pytest.raises(git_merge.MergeError, match="merge-tree took longer than 60 s"):
        git_merge.check(repo.store, repo.name, source, destination)


def test_a_broken_repository_is_a_clean_error(repo):
    source, destination = _diverged(repo, {"a.txt": "main\n"}, {"b.txt": "side\n"})
    (repo.bare / "objects" / "pack").rename(repo.bare / "gone")
    for loose in (repo.bare / "objects").glob("??"):
        for f in loose.iterdir():
            f.unlink()
    with pytest.raises(git_merge.MergeError):
        git_merge.check(repo.store, repo.name, source, destination)


def test_head_of(repo):
    commit = repo.commit({"a.txt": "a\n"})
    repo.push()
    assert git_merge.head_of(repo.bare, "refs/heads/main") == commit
    assert git_merge.head_of(repo.bare, "refs/heads/nope") is None
