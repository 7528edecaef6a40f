"""Pushes: the decision on each ref just before it moves, and what follows once refs moved.

The git hooks call these (through web/hooks/): `check_push` from pre-receive, while git holds
the pushed objects in quarantine and no ref has moved; `record_push` from post-receive, after
git moved the refs; `record_rejected` once git has exited, for the updates it did not apply.
These are the seams where ref-scoped tokens, push protection, webhooks and pull-request
updates decide or react.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gitward.domain.permissions import Action
from gitward.gitstore import reader as git_reader
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.store import GitStore
from gitward.services.caller import Caller, repository_target
from gitward.services.errors import Conflict, Forbidden, ServiceError
from gitward.storage.models import Repository, utcnow


def _target(repo: Repository) -> str:
    return f"repository:{repo.workspace.slug}/{repo.slug}"


def check_push(caller: Caller, repo: Repository, updates: Sequence[RefUpdate]) -> None:
    """Raise a ServiceError (403, or 404/401 when hidden) unless the caller may make the updates.

    Today one decision covers every ref, because the policy's target is the repository: write
    on it allows every update. Ref-scoped bounds (ref patterns, fast-forward only) will decide
    each update here, before any ref moves.
    """
    caller.require(
        Action.REPO_WRITE,
        repository_target(repo),
        f"Repository {repo.workspace.slug}/{repo.slug} not found",
    )


def check_ref_limit(
    git: GitStore, storage_name: str, updates: Sequence[RefUpdate], limit: int
) -> None:
    """Forbidden if the push would leave the repository with more than `limit` refs (every
    ref is a line of every clone's advertisement, and a `want` of a mirror's clone).

    Counted on disk only when the push creates more refs than it deletes: the common push
    moves a branch and costs nothing here. Run outside any unit of work (a git process)."""
    added = sum(u.created for u in updates) - sum(u.deleted for u in updates)
    if added <= 0:
        return
    if git.ref_count(storage_name) + added > limit:
        raise Forbidden(
            f"the repository would have more than the limit of {limit:,} refs; "
            "delete some branches or tags first"
        )


def record_refused(
    caller: Caller, repo: Repository, updates: Sequence[RefUpdate], error: ServiceError
) -> None:
    """Audit a push that pre-receive refused (nothing of it was applied)."""
    caller.audit(
        "repository.push.refused",
        target=_target(repo),
        reason=error.message,
        refs=[u.as_dict() for u in updates],
    )


@dataclass(frozen=True)
class OnDisk:
    """What a push changed on disk that the repository's row records."""

    main_branch: str | None
    size: int


def settle_on_disk(git: GitStore, storage_name: str) -> OnDisk:
    """After refs moved, before any write lock is taken: settle the main branch (git
    subprocesses) and measure the objects (a directory scan)."""
    return OnDisk(git.settle_main_branch(storage_name), git.size(storage_name))


def record_push(
    caller: Caller, repo: Repository, updates: Sequence[RefUpdate], disk: OnDisk
) -> None:
    """After refs moved: note the main branch, size and change, audit every ref update."""
    if disk.main_branch is not None and repo.mainbranch != disk.main_branch:
        repo.mainbranch = disk.main_branch
    repo.updated_on = utcnow()
    repo.size = disk.size
    caller.audit("repository.push", target=_target(repo), refs=[u.as_dict() for u in updates])


def record_rejected(caller: Caller, repo: Repository, updates: Sequence[RefUpdate]) -> None:
    """Audit the updates that pre-receive allowed but git did not apply (e.g. a lost race)."""
    caller.audit(
        "repository.push.rejected", target=_target(repo), refs=[u.as_dict() for u in updates]
    )


def move_ref(
    caller: Caller, git: GitStore, repo: Repository, update: RefUpdate, message: str
) -> None:
    """Move one ref over REST as a push without a pack would: decided by `check_push`, moved
    only if it still holds `update.old` (git's ref lock decides a race with a push as between
    two pushes), recorded by `record_push`. A refusal or a lost race is audited and answered
    once the unit of work has committed that audit (`ServiceError.recorded`); a lost race is
    a Conflict (the adapters choose its status)."""
    updates = [update]
    try:
        check_push(caller, repo, updates)
    except ServiceError as refused:
        record_refused(caller, repo, updates, refused)
        raise refused.recorded() from None
    moved = git_reader.update_ref(
        git.path_of(repo.storage_name), update.ref, update.new, update.old,
        message=f"gitward: {message} by {caller.actor}",
    )
    if not moved:
        record_rejected(caller, repo, updates)
        raise Conflict(
            f"{update.ref} changed while the request ran (a concurrent push?): try again."
        ).recorded()
    record_push(caller, repo, updates, settle_on_disk(git, repo.storage_name))
