"""Merging through the service: strategies, conflicts, the policy, and races with pushes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gitward.domain.identity import AuthContext, CredentialKind, TokenPrincipal, UserPrincipal
from gitward.gitstore import reader as git_reader
from gitward.gitstore.store import git_env
from gitward.services import merges
from gitward.services.caller import Caller
from gitward.services.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
)
from gitward.services.merges import Merged, Strategy
from gitward.storage.models import AuditEvent, Repository


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Ann Author", "-c", "user.email=ann@example.com", *args],
        cwd=cwd, env=git_env(), check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


class Site:
    """acme/site (private), its bare repository and a scratch clone to make commits in."""

    def __init__(self, runtime: Any, bare: Path, work: Path, users: dict[str, int]) -> None:
        self.runtime = runtime
        self.bare = bare
        self.work = work
        self.users = users

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        for name, text in files.items():
            if text is None:
                (self.work / name).unlink()
                continue
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        _git("add", "-A", cwd=self.work)
        _git("commit", "-q", "-m", message, cwd=self.work)
        return _git("rev-parse", "HEAD", cwd=self.work)

    def checkout(self, branch: str, start: str | None = None) -> None:
        if start is None:
            _git("checkout", "-q", branch, cwd=self.work)
        else:
            _git("checkout", "-q", "-B", branch, start, cwd=self.work)

    def push(self, *refs: str) -> None:
        _git("push", "-q", "--force", str(self.bare), *(refs or ("--all",)), cwd=self.work)

    def head(self, branch: str = "main") -> str:
        return _git("--git-dir", str(self.bare), "rev-parse", f"refs/heads/{branch}")

    def bare_git(self, *args: str) -> str:
        return _git("--git-dir", str(self.bare), *args)

    def ctx(self, username: str) -> AuthContext:
        return AuthContext(UserPrincipal(self.users[username], username), CredentialKind.PASSWORD)

    def run(self, ctx: AuthContext, work: Callable[[Caller, Repository], Any]) -> Any:
        """`work` in a unit of work as the pipeline runs it: committed when it succeeds or its
        error is `recorded()`, rolled back otherwise. The answer, or the ServiceError."""
        try:
            with self.runtime.unit_of_work() as store:
                caller = Caller(store, ctx, "127.0.0.1", "http://testserver")
                view = store.repos.repository_view("acme", "site")
                repo = store.repos.repository_by_id(view.id)
                try:
                    return work(caller, repo)
                except ServiceError as error:
                    if not error.commits:
                        raise
                    return error
        except ServiceError as error:
            return error

    def merge(self, username: str, source: str, strategy: Strategy, branch: str = "main",
              message: str = "Merged in side") -> Any:
        return self.run(self.ctx(username), lambda caller, repo: merges.merge(
            caller, self.runtime.git, repo, source=source, destination_branch=branch,
            strategy=strategy, message=message))

    def pushes(self) -> list[tuple[str, str]]:
        with self.runtime.unit_of_work() as store:
            rows = store.open().scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
            return [(e.action, e.actor) for e in rows if e.action.startswith("repository.push")]


@pytest.fixture
def site(world, runtime, tmp_path) -> Site:
    alice = world.user("alice")
    bob = world.user("bob")
    carol = world.user("carol")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    body = world.repository(alice, "acme", "site", "WEB")
    world.grant_repo(alice, "acme", "site", "bob", "read")
    with runtime.unit_of_work() as store:
        store.accounts.user_by_id(alice.id).display_name = "Alice Liddell"
    bare = runtime.git.path_of(body["uuid"].strip("{}") + ".git")
    work = tmp_path / "work"
    _git("init", "-q", "-b", "main", str(work))
    made = Site(runtime, bare, work, {"alice": alice.id, "bob": bob.id, "carol": carol.id})
    made.commit({"README.md": "# Site\n", "shared.txt": "1\n2\n3\n4\n5\n"}, "First")
    made.push()
    return made


def _diverge(site: Site, main: dict[str, str | None], side: dict[str, str | None]) -> str:
    """Branch side off main, commit on both, push; side's head."""
    site.checkout("side", "main")
    source = site.commit(side, "side work")
    site.checkout("main")
    site.commit(main, "main work")
    site.push()
    return source


def _no_ff_tree(site: Site, source: str) -> str:
    _git("merge", "-q", "--no-ff", "--no-edit", source, cwd=site.work)
    tree = _git("rev-parse", "HEAD^{tree}", cwd=site.work)
    _git("reset", "-q", "--hard", "HEAD~1", cwd=site.work)
    return tree


def test_a_merge_commit_has_both_parents_the_merged_tree_and_the_caller_as_author(site):
    source = _diverge(site, {"shared.txt": "one\n2\n3\n4\n5\n"}, {"shared.txt": "1\n2\n3\n4\nfive\n",
                                                                   "new.txt": "new\n"})
    before = site.head()
    merged = site.merge("alice", source, Strategy.MERGE_COMMIT, message="Merged in side (#1)")
    assert isinstance(merged, Merged), merged
    assert merged.previous == before and site.head() == merged.commit
    show = site.bare_git("show", "-s", "--format=%P|%an|%ae|%cn|%ce|%B", merged.commit)
    assert show == (f"{before} {source}|Alice Liddell|alice@example.com|Alice Liddell|"
                    "alice@example.com|Merged in side (#1)")
    assert site.bare_git("rev-parse", f"{merged.commit}^{{tree}}") == _no_ff_tree(site, source)
    assert site.pushes() == [("repository.push", "user:alice")]
    assert "gitward: merge of" in site.bare_git("reflog", "-1", "--format=%gs", "refs/heads/main")


def test_a_merge_commit_is_made_even_when_a_fast_forward_is_possible(site):
    before = site.head()
    site.checkout("side", "main")
    source = site.commit({"new.txt": "new\n"})
    site.push()
    merged = site.merge("alice", source, Strategy.MERGE_COMMIT)
    assert merged.commit not in (source, before)
    assert site.bare_git("show", "-s", "--format=%P", merged.commit) == f"{before} {source}"
    assert site.bare_git("rev-parse", f"{merged.commit}^{{tree}}") == site.bare_git(
        "rev-parse", f"{source}^{{tree}}")


def test_squash_is_one_commit_on_the_destination_with_the_merged_tree(site):
    source = _diverge(site, {"README.md": "# Site!\n"}, {"shared.txt": "1\n2\n3\n4\nfive\n"})
    site.checkout("side")
    site.commit({"more.txt": "more\n"}, "more side work")
    site.push()
    source = site.head("side")
    before = site.head()
    merged = site.merge("alice", source, Strategy.SQUASH, message="Side, squashed")
    assert isinstance(merged, Merged), merged
    assert site.bare_git("show", "-s", "--format=%P|%s", merged.commit) == f"{before}|Side, squashed"
    site.checkout("main")
    assert site.bare_git("rev-parse", f"{merged.commit}^{{tree}}") == _no_ff_tree(site, source)
    assert site.bare_git("rev-list", "--count", f"{before}..{merged.commit}") == "1"


def test_fast_forward_moves_to_the_source_or_is_refused(site):
    site.checkout("side", "main")
    source = site.commit({"new.txt": "new\n"})
    site.push()
    before = site.head()
    merged = site.merge("alice", source, Strategy.FAST_FORWARD)
    assert merged == Merged(commit=source, previous=before) and site.head() == source
    diverged = _diverge(site, {"README.md": "x\n"}, {"other.txt": "y\n"})
    head = site.head()
    refused = site.merge("alice", diverged, Strategy.FAST_FORWARD)
    assert isinstance(refused, Conflict) and "cannot be fast-forwarded" in refused.message
    assert site.head() == head


def test_a_conflict_names_the_files_and_nothing_moves(site):
    source = _diverge(site, {"shared.txt": "1\nmain\n3\n4\n5\n", "README.md": "main\n"},
                      {"shared.txt": "1\nside\n3\n4\n5\n", "README.md": "side\n", "ok.txt": "k\n"})
    head = site.head()
    for strategy in (Strategy.MERGE_COMMIT, Strategy.SQUASH):
        refused = site.merge("alice", source, strategy)
        assert isinstance(refused, Conflict), refused
        assert "conflicts in: README.md, shared.txt." in refused.message
        assert not refused.commits
        assert site.head() == head
    check = merges.check(site.runtime.git, site.bare.name, source, head)
    assert check == merges.Check(True, ("README.md", "shared.txt"), False, False)
    assert site.pushes() == []  # nothing was recorded: nothing moved


def test_a_source_already_in_the_destination_has_nothing_to_merge(site):
    old = site.head()
    site.commit({"README.md": "later\n"})
    site.push()
    head = site.head()
    assert merges.check(site.runtime.git, site.bare.name, old, head).merged
    for strategy in Strategy:
        refused = site.merge("alice", old, strategy)
        assert isinstance(refused, Conflict) and "nothing to merge" in refused.message
    assert site.head() == head


def test_the_policy_decides_before_anything_is_computed(site):
    source = _diverge(site, {"a.txt": "a\n"}, {"b.txt": "b\n"})
    head = site.head()
    objects = site.bare_git("count-objects", "-v")
    refused = site.merge("bob", source, Strategy.MERGE_COMMIT)  # may read, not write
    assert isinstance(refused, Forbidden), refused
    hidden = site.merge("carol", source, Strategy.MERGE_COMMIT)  # may not even read
    assert isinstance(hidden, NotFound) and "acme/site" in hidden.message
    # Even a conflict or a missing branch is not told to them.
    assert isinstance(site.merge("bob", source, Strategy.SQUASH, branch="nope"), Forbidden)
    assert site.head() == head
    assert site.bare_git("count-objects", "-v") == objects  # no merge was computed


def test_a_push_between_reading_the_head_and_the_swap_is_kept(site, monkeypatch):
    """The destination moves after the merge read it: the swap fails, the merge is computed
    again on the pushed head, and the pushed commit is in the result."""
    source = _diverge(site, {"a.txt": "a\n"}, {"b.txt": "b\n"})
    site.checkout("incoming", "main")
    pushed = site.commit({"c.txt": "c\n"}, "pushed meanwhile")
    site.push("incoming")
    head = site.head()
    real = git_reader.update_ref
    raced: list[str] = []

    def racing(path, ref, new, old, **kwargs):
        if not raced:  # a push lands just before the merge's compare-and-swap
            raced.append(new)
            assert real(path, ref, pushed, old)
        return real(path, ref, new, old, **kwargs)

    monkeypatch.setattr(git_reader, "update_ref", racing)
    merged = site.merge("alice", source, Strategy.MERGE_COMMIT)
    assert isinstance(merged, Merged), merged
    assert merged.previous == pushed and merged.commit != raced[0]
    assert site.head() == merged.commit
    assert site.bare_git("show", "-s", "--format=%P", merged.commit) == f"{pushed} {source}"
    for kept in (head, pushed, source):
        assert subprocess.run(["git", "--git-dir", str(site.bare), "merge-base", "--is-ancestor",
                               kept, merged.commit], env=git_env()).returncode == 0
    assert site.pushes() == [("repository.push.rejected", "user:alice"),
                                  ("repository.push", "user:alice")]


def test_a_destination_that_keeps_moving_is_refused_and_loses_nothing(site, monkeypatch):
    source = _diverge(site, {"a.txt": "a\n"}, {"b.txt": "b\n"})
    site.checkout("incoming", "main")
    first = site.commit({"c.txt": "c\n"}, "first push")
    second = site.commit({"d.txt": "d\n"}, "second push")
    site.push("incoming")
    real = git_reader.update_ref
    landing = [first, second]

    def racing(path, ref, new, old, **kwargs):
        if landing:
            assert real(path, ref, landing.pop(0), old)
        return real(path, ref, new, old, **kwargs)

    monkeypatch.setattr(git_reader, "update_ref", racing)
    refused = site.merge("alice", source, Strategy.SQUASH)
    assert isinstance(refused, Conflict) and "changed while the request ran" in refused.message
    assert refused.commits  # both lost updates stay audited
    assert site.head() == second
    assert site.pushes() == [("repository.push.rejected", "user:alice")] * 2


def test_a_push_that_makes_the_merge_conflict_refuses_it(site, monkeypatch):
    source = _diverge(site, {"a.txt": "a\n"}, {"shared.txt": "1\nside\n3\n4\n5\n"})
    site.checkout("incoming", "main")
    pushed = site.commit({"shared.txt": "1\npushed\n3\n4\n5\n"}, "conflicting push")
    site.push("incoming")
    real = git_reader.update_ref
    raced: list[str] = []

    def racing(path, ref, new, old, **kwargs):
        if not raced:
            raced.append(new)
            assert real(path, ref, pushed, old)
        return real(path, ref, new, old, **kwargs)

    monkeypatch.setattr(git_reader, "update_ref", racing)
    refused = site.merge("alice", source, Strategy.MERGE_COMMIT)
    assert isinstance(refused, Conflict) and "conflicts in: shared.txt" in refused.message
    assert refused.commits
    assert site.head() == pushed
    assert site.pushes() == [("repository.push.rejected", "user:alice")]


def test_a_fast_forward_survives_a_race_only_while_it_is_one(site, monkeypatch):
    site.checkout("side", "main")
    source = site.commit({"new.txt": "new\n"})
    site.push()
    site.checkout("incoming", "main")
    pushed = site.commit({"c.txt": "c\n"})
    site.push("incoming")
    real = git_reader.update_ref
    raced: list[str] = []

    def racing(path, ref, new, old, **kwargs):
        if not raced:
            raced.append(new)
            assert real(path, ref, pushed, old)
        return real(path, ref, new, old, **kwargs)

    monkeypatch.setattr(git_reader, "update_ref", racing)
    refused = site.merge("alice", source, Strategy.FAST_FORWARD)
    assert isinstance(refused, Conflict) and "cannot be fast-forwarded" in refused.message
    assert site.head() == pushed


BAD_INPUT: list[tuple[dict[str, Any], type[ServiceError], str]] = [
    ({"source": "main"}, BadRequest, "40 hexadecimal"),
    ({"source": "--upload-pack=x"}, BadRequest, "40 hexadecimal"),
    ({"source": "f" * 40}, NotFound, "does not exist"),
    ({"destination_branch": "no..good"}, BadRequest, "branch name"),
    ({"destination_branch": "-x"}, BadRequest, "branch name"),
    ({"destination_branch": "missing"}, NotFound, "'missing' not found"),
    ({"message": "  \n"}, BadRequest, "commit message"),
    ({"message": "a\x00b"}, BadRequest, "NUL"),
    ({"message": "m" * 70000}, BadRequest, "at most"),
    ({"strategy": "rebase"}, BadRequest, "Not a merge strategy"),
]


def test_bad_input_is_a_clear_error_and_moves_nothing(site):
    source = _diverge(site, {"a.txt": "a\n"}, {"b.txt": "b\n"})
    head = site.head()
    for changes, error, text in BAD_INPUT:
        args: dict[str, Any] = {"source": source, "destination_branch": "main",
                                "strategy": Strategy.MERGE_COMMIT, "message": "m", **changes}
        answer = site.run(site.ctx("alice"), lambda caller, repo, a=args: merges.merge(
            caller, site.runtime.git, repo, **a))
        assert isinstance(answer, error) and text in answer.message, (changes, answer)
        assert site.head() == head
    assert site.pushes() == []


def test_check_answers_service_errors(site):
    head = site.head()
    with pytest.raises(BadRequest):
        merges.check(site.runtime.git, site.bare.name, "HEAD", head)
    with pytest.raises(NotFound):
        merges.check(site.runtime.git, site.bare.name, "0" * 40, head)


def test_a_token_acting_as_itself_commits_under_its_name_with_a_noreply_address(site):
    ctx = AuthContext(TokenPrincipal(7, "ci bot", CredentialKind.REPOSITORY_ACCESS_TOKEN),
                      CredentialKind.REPOSITORY_ACCESS_TOKEN)
    person = site.run(ctx, lambda caller, repo: merges.identity(caller))
    assert person == merges.Identity("ci bot (repository access token)", "noreply@testserver")
    with site.runtime.unit_of_work() as store:
        alice = merges.identity(Caller(store, site.ctx("alice")))
    assert alice == merges.Identity("Alice Liddell", "alice@example.com")


def test_squash_of_a_source_ahead_of_the_branch_is_still_one_new_commit(site):
    before = site.head()
    site.checkout("side", "main")
    site.commit({"one.txt": "1\n"})
    source = site.commit({"two.txt": "2\n"})
    site.push()
    merged = site.merge("alice", source, Strategy.SQUASH)
    assert merged.commit != source
    assert site.bare_git("show", "-s", "--format=%P", merged.commit) == before
    assert site.bare_git("rev-parse", f"{merged.commit}^{{tree}}") == site.bare_git(
        "rev-parse", f"{source}^{{tree}}")


def test_the_push_check_is_asked_the_update_before_the_merge_is_computed(site, monkeypatch):
    """First the update the merge will make, never a forced one (a merge commit descends from
    the head), then the real update when the branch moves."""
    from gitward.gitstore.hooks import RefUpdate
    from gitward.services import pushes

    source = _diverge(site, {"a.txt": "a\n"}, {"b.txt": "b\n"})
    asked: list[RefUpdate] = []
    real = pushes.check_push

    def recording(caller, repo, updates):
        asked.extend(updates)
        return real(caller, repo, updates)

    monkeypatch.setattr(pushes, "check_push", recording)
    head = site.head()
    merged = site.merge("alice", source, Strategy.MERGE_COMMIT)
    ref = "refs/heads/main"
    assert asked == [RefUpdate(head, head, ref), RefUpdate(head, merged.commit, ref)]
    asked.clear()
    site.checkout("main")
    _git("fetch", "-q", str(site.bare), "main", cwd=site.work)
    _git("reset", "-q", "--hard", merged.commit, cwd=site.work)
    site.checkout("ahead", "main")
    ahead = site.commit({"c.txt": "c\n"})
    site.push("ahead")
    assert site.merge("alice", ahead, Strategy.FAST_FORWARD).commit == ahead
    assert asked == [RefUpdate(merged.commit, ahead, ref)] * 2


def test_merges_and_pushes_at_once_lose_no_commit(site):
    """A thread pushes to main (compare-and-swap updates, as receive-pack makes them) while
    merges land on it: every commit either of them put on main is in its final history, and
    a merge is either made or refused as a lost race."""
    import threading
    import time

    sides = []
    for n in range(4):
        site.checkout(f"side{n}", "main")
        sides.append(site.commit({f"side{n}.txt": f"{n}\n"}, f"side {n}"))
    site.checkout("main")
    site.push()
    landed: list[str] = []

    def pusher() -> None:
        for count in range(30):
            head = site.head()
            tree = site.bare_git("rev-parse", f"{head}^{{tree}}")
            commit = site.bare_git("commit-tree", "-p", head, "-m", f"push {count}", tree)
            if git_reader.update_ref(site.bare, "refs/heads/main", commit, head):
                landed.append(commit)
            time.sleep(0.005)

    thread = threading.Thread(target=pusher)
    thread.start()
    try:
        answers = [site.merge("alice", source, Strategy.MERGE_COMMIT) for source in sides]
    finally:
        thread.join()
    assert landed
    for answer in answers:
        assert isinstance(answer, Merged) or (
            isinstance(answer, Conflict) and "changed while" in answer.message), answer
    # what lost its races merges now that nothing else moves the branch
    answers = [a if isinstance(a, Merged) else site.merge("alice", source, Strategy.MERGE_COMMIT)
               for source, a in zip(sides, answers, strict=True)]
    assert all(isinstance(a, Merged) for a in answers), answers
    final = site.head()
    for commit in [*landed, *sides, *(a.commit for a in answers)]:
        assert subprocess.run(["git", "--git-dir", str(site.bare), "merge-base",
                               "--is-ancestor", commit, final], env=git_env()).returncode == 0


def test_a_swap_that_fails_without_the_branch_moving_is_tried_once_more(site, monkeypatch):
    """A push holding the branch's lock at the moment of the swap fails it though the branch
    did not move (yet): the merge is tried once more."""
    source = _diverge(site, {"a.txt": "a\n"}, {"b.txt": "b\n"})
    head = site.head()
    real = git_reader.update_ref
    calls: list[str] = []

    def locked_once(path, ref, new, old, **kwargs):
        calls.append(new)
        return False if len(calls) == 1 else real(path, ref, new, old, **kwargs)

    monkeypatch.setattr(git_reader, "update_ref", locked_once)
    merged = site.merge("alice", source, Strategy.MERGE_COMMIT)
    assert isinstance(merged, Merged) and merged.previous == head and len(calls) == 2
    assert site.head() == merged.commit
