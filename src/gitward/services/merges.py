"""Merging a commit into a branch, as a pull request is merged (docs/merging.md).

The merge is computed by git on the bare repository (`gitstore.merge`: `merge-tree
--write-tree`, then `commit-tree`), with no work tree, and the branch moves as a push without
a pack would (`pushes.move_ref`): the push check on the destination, a compare-and-swap from
the head the merge was computed on, and the push's record. So a merge never loses a commit that
landed meanwhile and never leaves a half-updated ref.

`check` answers whether a commit merges cleanly (and how) without moving anything; `merge`
makes the merge with one of three strategies. Whoever calls them has decided what the caller
may read; `merge` itself asks the policy for write on the destination before computing
anything, so a caller who may not merge learns nothing about the merge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from gitward.domain.identity import TokenPrincipal
from gitward.gitstore import merge as git_merge
from gitward.gitstore import reader as git_reader
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.merge import Check, Identity, Strategy
from gitward.gitstore.store import GitStore
from gitward.services import pushes
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, Conflict, NotFound, ServiceError
from gitward.storage.models import Repository

__all__ = ["Check", "MergeUnavailable", "Merged", "Strategy", "check", "identity", "merge"]

T = TypeVar("T")

#: A refusal for conflicts names at most this many files (`Check.conflicts` has them all).
NAMED_CONFLICTS = 20
#: The longest commit message a merge takes, in characters.
MAX_MESSAGE = 65536
#: How many times the merge is computed when the destination moves under it: once more, on
#: the head that moved (a merge recomputed on the new destination is as correct as the first).
ATTEMPTS = 2


class MergeUnavailable(ServiceError):
    """git could not compute the merge (a time-out, a broken repository): try again later."""

    status = 503


@dataclass(frozen=True)
class Merged:
    commit: str  # the destination's new head
    previous: str  # its head before


def _git(call: Callable[[], T]) -> T:
    """`call()`, with what the git layer refuses as the errors the adapters answer."""
    try:
        return call()
    except git_merge.BadCommitId as exc:
        raise BadRequest(str(exc)) from None
    except git_merge.UnknownCommit as exc:
        raise NotFound(str(exc)) from None
    except git_merge.MergeError as exc:
        raise MergeUnavailable(str(exc)) from None


def check(git: GitStore, storage_name: str, source: str, destination: str) -> Check:
    """Whether commit `source` merges cleanly into commit `destination`, and how (moves no
    ref; objects it writes are unreachable garbage). BadRequest for an id that is not 40
    hexadecimal digits, NotFound for one that names no commit."""
    return _git(lambda: git_merge.check(git, storage_name, source, destination))


def _host(caller: Caller) -> str:
    host = urlsplit(caller.base_url).hostname if caller.base_url else None
    if not host:
        return "localhost"
    return f"[{host}]" if ":" in host else host


def identity(caller: Caller) -> Identity:
    """Who a merge made by `caller` is authored and committed by: the user's display name
    and email; for a credential acting as itself, its name and kind, with a noreply address
    on the site's host."""
    user = caller.user
    host = _host(caller)
    if user is not None:
        return Identity(user.display_name or user.username,
                        user.email or f"{user.username}@noreply.{host}")
    principal = caller.ctx.principal
    if isinstance(principal, TokenPrincipal):
        kind = principal.kind.value.replace("_", " ")
        name = f"{principal.name} ({kind})" if principal.name.strip() else kind.capitalize()
        return Identity(name, f"noreply@{host}")
    return Identity("Gitward", f"noreply@{host}")


def _message(message: object) -> str:
    if not isinstance(message, str) or not message.strip():
        raise BadRequest("Give the merge a commit message.")
    if "\x00" in message:
        raise BadRequest("A commit message may not contain NUL characters.")
    if len(message) > MAX_MESSAGE:
        raise BadRequest(f"A commit message may have at most {MAX_MESSAGE:,} characters.")
    return message


def _strategy(strategy: object) -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    try:
        return Strategy(str(strategy))
    except ValueError:
        names = ", ".join(s.value for s in Strategy)
        raise BadRequest(f"Not a merge strategy: {str(strategy)[:60]!r} (one of {names})") from None


def _conflicts(branch: str, conflicts: tuple[str, ...]) -> Conflict:
    named = ", ".join(conflicts[:NAMED_CONFLICTS])
    more = len(conflicts) - NAMED_CONFLICTS
    if more > 0:
        named += f" and {more} more"
    return Conflict(f"The merge into {branch} has conflicts in: {named}. Nothing was merged; "
                    "resolve them on the source branch, then merge again.")


def _build(
    path: Path, strategy: Strategy, source: str, head: str, branch: str,
    message: str, person: Identity,
) -> str:
    """The commit the destination is to hold: merging `source` into `head`."""
    found = git_merge.outcome(path, source, head)
    result = found.check
    if result.merged:
        raise Conflict(f"{branch} already contains {source}: there is nothing to merge.")
    if strategy is Strategy.FAST_FORWARD:
        if not result.fast_forward:
            raise Conflict(
                f"{branch} cannot be fast-forwarded to {source}: it has commits the source "
                "does not. Merge with a merge commit or squash instead."
            )
        return source
    if result.conflicted:
        raise _conflicts(branch, result.conflicts)
    parents = (head, source) if strategy is Strategy.MERGE_COMMIT else (head,)
    return git_merge.commit_tree(path, found.tree, parents, message, person)


def _planned(head: str | None, source: str, ref: str, strategy: Strategy) -> RefUpdate:
    """The update the merge will make, as the push check is asked it before anything is
    computed (so a caller who may not merge learns nothing of the merge): a fast-forward
    moves to `source`; a merge commit or squash descends from the head, never a forced update,
    which `head -> head` stands for until the commit exists."""
    if head is None:
        return RefUpdate(git_reader.ZERO_ID, source, ref)
    return RefUpdate(head, source if strategy is Strategy.FAST_FORWARD else head, ref)


def merge(
    caller: Caller,
    git: GitStore,
    repo: Repository,
    *,
    source: str,
    destination_branch: str,
    strategy: Strategy,
    message: str,
) -> Merged:
    """Merge commit `source` into branch `destination_branch` of `repo`.

    MERGE_COMMIT: a commit with parents (destination, source) and the merged tree, even when
    the destination could be fast-forwarded. SQUASH: one commit with parent the destination
    and the merged tree. FAST_FORWARD: the destination moves to `source` itself, refused
    (Conflict) unless the destination is its ancestor. Conflicts are a Conflict naming the
    files; a source the destination already contains is a Conflict. Nothing moves on a
    refusal.

    The destination moves by `pushes.move_ref` from the head the merge was computed on. If the
    swap fails (a push won the race, or held the branch's lock at that moment), the merge is
    computed once more on the head the branch holds then, and moved from there. A second lost
    race, or a refusal on the new head, is answered with the audit of the lost update kept
    (`ServiceError.recorded`)."""
    source_id = _git(lambda: git_merge.check_commit_id(source))
    try:
        branch = git_reader.check_branch_name(destination_branch)
    except (git_reader.BadRevision, TypeError, AttributeError):
        raise BadRequest(f"Not a valid branch name: {str(destination_branch)[:200]!r}") from None
    chosen = _strategy(strategy)
    text = _message(message)
    ref = f"refs/heads/{branch}"
    path = git.path_of(repo.storage_name)
    if not path.is_dir():
        raise MergeUnavailable("The repository's storage could not be read; try again later.")
    head = _git(lambda: git_merge.head_of(path, ref))
    pushes.check_push(caller, repo, [_planned(head, source_id, ref, chosen)])
    if head is None:
        raise NotFound(f"Branch {branch!r} not found")
    person = identity(caller)
    lost_race = False
    for attempt in range(1, ATTEMPTS + 1):
        try:
            new = _build_checked(path, chosen, source_id, head, branch, text, person)
            pushes.move_ref(caller, git, repo, RefUpdate(head, new, ref),
                            f"merge of {source_id[:12]} ({chosen.value})")
            return Merged(commit=new, previous=head)
        except Conflict as refused:
            if not refused.commits:  # computed, not the compare-and-swap: nothing moved
                raise (refused.recorded() if lost_race else refused) from None
            if attempt == ATTEMPTS:
                raise
            try:
                moved = _git(lambda: git_merge.head_of(path, ref))
            except ServiceError as failed:
                raise failed.recorded() from None
            if moved is None:
                raise NotFound(f"Branch {branch!r} was deleted while merging").recorded() from None
            lost_race = True
            head = moved
        except ServiceError as refused:
            raise (refused.recorded() if lost_race else refused) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _build_checked(
    path: Path, strategy: Strategy, source: str, head: str, branch: str,
    message: str, person: Identity,
) -> str:
    return _git(lambda: _build(path, strategy, source, head, branch, message, person))
