"""Merging two commits of a bare repository with git itself, without a work tree.

`git merge-tree --write-tree` merges two commits as `git merge` would (the same `ort`
strategy, rename detection and conflict rules) straight into the object database and prints
the merged tree and the paths in conflict; `git commit-tree` then writes a commit of that tree.
Nothing here needs a checkout, an index or a lock besides git's own: two requests merging in
the same repository at once only add objects (each written to a temporary file and renamed into
place), so they cannot disturb each other or a push. No ref moves here: the caller moves the
destination with a compare-and-swap (`reader.update_ref`), which decides a race with a push.

Every id given to git is checked first to be 40 hexadecimal digits (`BadCommitId`), so that
nothing a client typed reaches git's command line as an option or as revision syntax, and is
then looked up as a commit (`UnknownCommit`). Every git process runs with a time limit, and a
failure is a `MergeError` whose message is safe to show a client.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from gitward.gitstore.store import GitStore, git_env

_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
#: A merge of a large repository can take a while; a git process is stopped after this long.
MERGE_TIMEOUT_SECONDS = 60.0
#: Reading ancestry and objects is quick; this bounds it all the same.
READ_TIMEOUT_SECONDS = 30.0


class Strategy(StrEnum):
    MERGE_COMMIT = "merge_commit"
    SQUASH = "squash"
    FAST_FORWARD = "fast_forward"


@dataclass(frozen=True)
class Check:
    conflicted: bool
    conflicts: tuple[str, ...]  # paths in conflict, sorted
    fast_forward: bool  # the destination is an ancestor of the source
    merged: bool  # the source is already in the destination (nothing to merge)


@dataclass(frozen=True)
class Outcome:
    """A check and the tree the merge produces (the source's own on a fast-forward; the tree
    git wrote with conflict markers when conflicted, which nothing may commit)."""

    check: Check
    tree: str


@dataclass(frozen=True)
class Identity:
    """Who a commit names as author and committer."""

    name: str
    email: str


class MergeError(Exception):
    """A merge that git could not compute; the message is safe to show a client."""


class BadCommitId(MergeError, ValueError):
    """Not a full commit id (40 hexadecimal digits)."""


class UnknownCommit(MergeError, LookupError):
    """A well-formed id that names no commit of the repository."""


def check_commit_id(value: object) -> str:
    """`value` as a full lower-case commit id, or BadCommitId."""
    if not isinstance(value, str) or not _COMMIT_ID.fullmatch(value.lower()):
        shown = repr(value)[:60] if isinstance(value, str) else type(value).__name__
        raise BadCommitId(f"Not a full commit id (40 hexadecimal digits): {shown}")
    return value.lower()


def _run(
    path: Path,
    args: list[str],
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = READ_TIMEOUT_SECONDS,
    ok: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run `git --git-dir <path> <args>`; MergeError on a time-out or an unexpected exit."""
    try:
        result = subprocess.run(
            ["git", "--git-dir", str(path), *args],
            input=stdin if stdin is not None else b"",
            env=env if env is not None else git_env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MergeError(
            f"git {args[0]} took longer than {timeout:g} s; the merge was not made"
        ) from None
    except OSError as exc:
        raise MergeError(f"git could not be started ({exc.strerror})") from None
    if result.returncode not in ok:
        # git's own words, first line only: they name commits, never paths outside the store
        first = result.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        detail = f": {first[0][:300]}" if first else ""
        raise MergeError(f"git {args[0]} failed (exit {result.returncode}){detail}")
    return result


def _require_commits(path: Path, *ids: str) -> None:
    """UnknownCommit unless every id names a commit (one `cat-file`, ids on its stdin)."""
    result = _run(
        path, ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        stdin="".join(f"{i}\n" for i in ids).encode(),
    )
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    for wanted, line in zip(ids, lines, strict=False):
        if line != f"{wanted} commit":
            raise UnknownCommit(f"Commit {wanted} does not exist in the repository")
    if len(lines) < len(ids):
        raise MergeError("git cat-file answered fewer lines than it was asked")


def merge_bases(path: Path, a: str, b: str) -> tuple[str, ...]:
    """Every best common ancestor of two commits (none for unrelated histories)."""
    result = _run(path, ["merge-base", "--all", "--end-of-options", a, b], ok=(0, 1))
    return tuple(result.stdout.decode().split())


def outcome(path: Path, source: str, destination: str) -> Outcome:
    """What merging `source` into `destination` gives. Writes the merged tree's objects
    (unreachable until a commit of them is referenced); moves no ref."""
    source = check_commit_id(source)
    destination = check_commit_id(destination)
    _require_commits(path, source, destination)
    bases = merge_bases(path, source, destination)
    # When one is an ancestor of the other it is the only best common ancestor.
    merged = bases == (source,)
    fast_forward = bases == (destination,)
    if merged:
        return Outcome(Check(False, (), fast_forward, True), tree_of(path, destination))
    if fast_forward:
        return Outcome(Check(False, (), True, False), tree_of(path, source))
    # Unrelated histories merge as `git merge --allow-unrelated-histories` would (files
    # both sides add differently are add/add conflicts).
    result = _run(
        path,
        ["merge-tree", "--write-tree", "--no-messages", "--name-only", "-z",
         "--allow-unrelated-histories", "--end-of-options", destination, source],
        timeout=MERGE_TIMEOUT_SECONDS,
        ok=(0, 1),
    )
    fields = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    tree = fields[0]
    if not _COMMIT_ID.fullmatch(tree):
        raise MergeError("git merge-tree did not answer a tree")
    conflicts = tuple(sorted({f for f in fields[1:] if f}))
    conflicted = result.returncode == 1
    if conflicted and not conflicts:
        raise MergeError("git merge-tree reported a conflict without naming a file")
    if not conflicted:
        conflicts = ()
    return Outcome(Check(conflicted, conflicts, False, False), tree)


def check(git: GitStore, storage_name: str, source: str, destination: str) -> Check:
    """Whether `source` merges cleanly into `destination` (both commit ids), and how.
    Moves no ref; the objects it writes are unreachable garbage (`git gc` prunes them)."""
    return outcome(git.path_of(storage_name), source, destination).check


def tree_of(path: Path, commit: str) -> str:
    commit = check_commit_id(commit)
    result = _run(path, ["rev-parse", "--verify", "--end-of-options", f"{commit}^{{tree}}"])
    tree = result.stdout.decode().strip()
    if not _COMMIT_ID.fullmatch(tree):
        raise MergeError(f"Commit {commit} has no tree")
    return tree


def _clean(text: str, fallback: str) -> str:
    """An ident part git writes as given: no angle brackets, newlines or NULs."""
    cleaned = re.sub(r"[<>\x00-\x1f\x7f]", "", text).strip()
    return cleaned or fallback


def commit_tree(
    path: Path,
    tree: str,
    parents: tuple[str, ...],
    message: str,
    person: Identity,
    when: datetime | None = None,
) -> str:
    """Write a commit of `tree` with `parents`, authored and committed by `person` at `when`
    (now), and return its id. The message goes through stdin, the identity through git's
    environment: neither can reach git's command line."""
    tree = check_commit_id(tree)
    args = ["commit-tree"]
    for parent in parents:
        args += ["-p", check_commit_id(parent)]
    args.append(tree)  # checked hexadecimal (commit-tree takes no --end-of-options)
    if "\x00" in message:
        raise MergeError("A commit message may not contain NUL characters")
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    stamp = f"@{int(moment.timestamp())} +0000"
    name = _clean(person.name, "Gitward")
    email = _clean(person.email, "noreply@localhost")
    env = git_env()
    env.update({
        "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": stamp,
    })
    text = message.rstrip() + "\n"
    result = _run(path, args, stdin=text.encode("utf-8", "surrogateescape"), env=env)
    commit = result.stdout.decode().strip()
    if not _COMMIT_ID.fullmatch(commit):
        raise MergeError("git commit-tree did not answer a commit id")
    return commit


def is_ancestor(path: Path, ancestor: str, descendant: str) -> bool:
    ancestor = check_commit_id(ancestor)
    descendant = check_commit_id(descendant)
    result = _run(
        path, ["merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant],
        ok=(0, 1),
    )
    return result.returncode == 0


def head_of(path: Path, ref: str) -> str | None:
    """The id `ref` (a full ref name, checked by the caller) holds now, or None."""
    result = _run(
        path, ["rev-parse", "--verify", "--quiet", "--end-of-options", ref], ok=(0, 1)
    )
    value = result.stdout.decode().strip()
    return value if result.returncode == 0 and _COMMIT_ID.fullmatch(value) else None
