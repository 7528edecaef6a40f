"""Pushes: the decision on each ref just before it moves, and what follows once refs moved.

The git hooks call these (through web/hooks/): `check_push` from pre-receive, while git holds
the pushed objects in quarantine and no ref has moved; `record_push` from post-receive, after
git moved the refs; `record_rejected` once git has exited, for the updates it did not apply.
These are the seams where ref-scoped tokens (each update decided on its own, with its ref),
push protection, webhooks and pull-request updates decide or react.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from gitward.credentials.registry import CredentialRegistry, Leak
from gitward.domain.identity import ANONYMOUS, AuthContext, CredentialKind, UserPrincipal
from gitward.domain.permissions import Action
from gitward.domain.policy import Denied
from gitward.domain.refs import RefChange
from gitward.gitstore import reader as git_reader
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.secret_scan import MAX_CANDIDATES, Candidate, ScanResult
from gitward.gitstore.store import GitStore
from gitward.services import events
from gitward.services.caller import Caller, repository_target
from gitward.services.errors import Conflict, Forbidden, ServiceError
from gitward.storage.models import PendingPush, Repository, utcnow
from gitward.storage.store import Store

log = logging.getLogger(__name__)

#: At most this many findings are named in the answer `git push` shows (all are audited).
NAMED_FINDINGS = 20


def _target(repo: Repository) -> str:
    return f"repository:{repo.workspace.slug}/{repo.slug}"


#: What `git push` shows for a ref that was allowed, in a push another ref of which was not.
WITH_THE_REST = "not applied: another ref of this push was refused"


class RefsRefused(Forbidden):
    """Updates of a push that the credential's ref restriction refuses (nothing of the push
    is applied). `reasons` holds every ref of the push with what `git push` shows for it:
    the refusal of each refused ref, WITH_THE_REST for the others."""

    def __init__(self, refused: dict[str, str], updates: Sequence[RefUpdate]) -> None:
        named = [f"{ref}: {reason}" for ref, reason in refused.items()]
        if len(named) == 1:
            super().__init__(named[0])
        else:
            super().__init__(f"{len(named)} of the refs may not be updated with this token:\n"
                             + "\n".join(f"  {line}" for line in named))
        self.reasons = {u.ref: refused.get(u.ref, WITH_THE_REST) for u in updates}


def ref_change(update: RefUpdate, fast_forwards: Mapping[str, bool] | None) -> RefChange:
    """An update as the policy judges it (`fast_forwards`: what git found, by ref)."""
    forward = None if fast_forwards is None else fast_forwards.get(update.ref)
    return RefChange(update.ref, update.created, update.deleted, forward)


def needs_fast_forwards(ctx: AuthContext) -> bool:
    """Does deciding this credential's updates need to know which are fast-forwards?"""
    return ctx.bound.fast_forward_only


def check_push(
    caller: Caller,
    repo: Repository,
    updates: Sequence[RefUpdate],
    fast_forwards: Mapping[str, bool] | None = None,
) -> None:
    """Raise a ServiceError (403, or 404/401 when hidden) unless the caller may make every
    update; RefsRefused, naming each refused ref, when its bound's ref restriction refuses
    some (domain/refs.py).

    First the write on the repository, then each update with its ref as the policy's
    target. `fast_forwards` says which updates of existing refs are fast-forwards (worked
    out by git before the unit of work, `gitstore.reader.fast_forwards`); an update it does
    not name counts as not known to be one, which a fast-forward-only token may not make."""
    target = repository_target(repo)
    not_found = f"Repository {repo.workspace.slug}/{repo.slug} not found"
    caller.require(Action.REPO_WRITE, target, not_found)
    if not caller.ctx.bound.restricts_refs:
        return  # the policy decides no ref differently from the repository
    refused: dict[str, str] = {}
    for update in updates:
        decision = caller.decide(
            Action.REPO_WRITE, replace(target, ref=ref_change(update, fast_forwards))
        )
        if isinstance(decision, Denied):
            refused[update.ref] = decision.reason
    if refused:
        raise RefsRefused(refused, updates)


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
    """What a push changed on disk that the repository's row records, and what its webhook
    events say about each ref (forced or not, the commits it brought)."""

    main_branch: str | None
    size: int
    changes: tuple[events.RefChange, ...] = ()


#: At most this many commits of each ref are named in a push's event (`truncated` beyond).
EVENT_COMMITS = 5


def _is_zero(value: str) -> bool:
    return set(value) == {"0"}


def ref_changes(git: GitStore, storage_name: str,
                updates: Sequence[RefUpdate]) -> tuple[events.RefChange, ...]:
    """What each update did, read from git (libgit2, no subprocess): the commits before and
    after, whether the update was forced (the old commit is not an ancestor of the new) and
    the commits it brought (not reachable from the old commit or, for a new ref, from any
    other branch). Branches and tags only; an update git cannot read is still reported, as
    its ids alone."""
    branch_like = [u for u in updates if u.ref.startswith(("refs/heads/", "refs/tags/"))]
    if not branch_like:
        return ()
    try:
        reader = git_reader.open_reader(git, storage_name)
    except Exception:
        log.exception("could not open repository %s to describe a push", storage_name)
        return tuple(events.RefChange(u.ref, u.old, u.new) for u in branch_like)
    found = []
    for u in branch_like:
        try:
            found.append(_ref_change(reader, u))
        except Exception:
            log.warning("could not read %s of %s for its push event", u.ref, storage_name,
                        exc_info=True)
            found.append(events.RefChange(u.ref, u.old, u.new))
    return tuple(found)


def _ref_change(reader: git_reader.RepositoryReader, u: RefUpdate) -> events.RefChange:
    old_commit = None if _is_zero(u.old) else reader.commit(u.old)
    new_commit = None if _is_zero(u.new) else reader.commit(u.new)
    forced = False
    commits: tuple[git_reader.Commit, ...] = ()
    truncated = False
    if old_commit is not None and new_commit is not None:
        forced = reader.merge_base(old_commit.id, new_commit.id) != old_commit.id
    if new_commit is not None:
        if old_commit is not None:
            exclude = [old_commit.id]
        else:
            exclude = [b.commit.id for b in reader.branches() if b.ref != u.ref]
        page = reader.log([new_commit.id], exclude, limit=EVENT_COMMITS)
        commits, truncated = page.commits, not page.is_last
    return events.RefChange(u.ref, u.old, u.new, old_commit, new_commit, forced, commits,
                            truncated)


def settle_on_disk(
    git: GitStore, storage_name: str, updates: Sequence[RefUpdate] = ()
) -> OnDisk:
    """After refs moved, before any write lock is taken: settle the main branch (git
    subprocesses), measure the objects (a directory scan) and describe each update for the
    push's webhook events."""
    return OnDisk(git.settle_main_branch(storage_name), git.size(storage_name),
                  ref_changes(git, storage_name, updates))


def record_push(
    caller: Caller, repo: Repository, updates: Sequence[RefUpdate], disk: OnDisk
) -> None:
    """After refs moved: note the main branch, size and change, audit every ref update,
    store the push's webhook events (`repo:push`, `repo:refs_changed`) in the same unit, and
    move the open pull requests whose source branch moved (services/pull_requests.py)."""
    from gitward.services import pull_requests  # it renders events: imported when needed

    if disk.main_branch is not None and repo.mainbranch != disk.main_branch:
        repo.mainbranch = disk.main_branch
    repo.updated_on = utcnow()
    repo.size = disk.size
    caller.audit("repository.push", target=_target(repo), refs=[u.as_dict() for u in updates])
    applied = {(u.ref, u.old, u.new) for u in updates}
    events.push(caller, repo, [c for c in disk.changes if (c.ref, c.old, c.new) in applied])
    pull_requests.on_push(caller, repo, updates)


def record_rejected(caller: Caller, repo: Repository, updates: Sequence[RefUpdate]) -> None:
    """Audit the updates that pre-receive allowed but git did not apply (e.g. a lost race)."""
    caller.audit(
        "repository.push.rejected", target=_target(repo), refs=[u.as_dict() for u in updates]
    )


# -- the outbox of push events (docs/architecture.md, "A push is never unrecorded") ------------


def runner() -> str:
    """How the outbox names this process (`host:pid`): a worker's own, since workers fork."""
    return f"{socket.gethostname()}:{os.getpid()}"


def runner_alive(name: str) -> bool:
    """Whether the process `name` (a `runner()`) may still be running its pushes: on this
    host, whether that process exists; on another host, it is assumed to be (until the
    push's deadline, which the recovery also looks at)."""
    host, _, pid = name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def note_pending(
    caller: Caller, repo: Repository, updates: Sequence[RefUpdate], deadline: datetime
) -> int:
    """Before git may move a push's refs: the outbox row its audit event is written from if
    this process dies before post-receive records it (`recover_pending`). Its id."""
    principal = caller.ctx.user
    return caller.store.audit.add_pending_push(PendingPush(
        repository_id=repo.id, actor=caller.actor,
        actor_user_id=principal.user_id if principal else None,
        credential=caller.ctx.credential.value, client_ip=caller.client_ip,
        updates=[u.as_dict() for u in updates], runner=runner(), deadline=deadline,
    ))


def settle_pending(store: Store, pending_id: int | None) -> None:
    """The push's event is written in this unit of work: its outbox row goes with it."""
    if pending_id is not None:
        store.audit.take_pending_push(pending_id)


@dataclass(frozen=True)
class Stranded:
    """An outbox row whose push is over and was never recorded: what to recover."""

    pending_id: int
    storage_name: str
    updates: tuple[RefUpdate, ...]


def stranded_pushes(
    store: Store, now: datetime, alive: Callable[[str], bool] = runner_alive, limit: int = 100
) -> list[Stranded]:
    """Outbox rows whose push cannot be running any more: its time limit passed, or the
    process that ran it is gone (a crash, `kill -9`, a restart)."""
    found = []
    for row in store.audit.pending_pushes(limit):
        if row.deadline > now and alive(row.runner):
            continue
        repo = store.repos.repository_by_id(row.repository_id)
        if repo is None:
            continue  # deleted: its rows went with it (cascade), or go now
        updates = tuple(
            RefUpdate(str(u["old"]), str(u["new"]), str(u["ref"])) for u in row.updates
        )
        found.append(Stranded(row.id, repo.storage_name, updates))
    return found


def recover_pending(store: Store, stranded: Stranded, now_on_disk: dict[str, str],
                    disk: OnDisk | None, base_url: str | None = None) -> bool:
    """Write the event of a push whose process died: the updates whose ref holds their new
    value landed (a push, `recovered`), the others did not (rejected). False if another
    process recovered it first. `now_on_disk` and `disk` were read before this unit of work
    (no git process under a write lock); `base_url` is where the push's webhook events
    link (the site's: the push's request is gone)."""
    row = store.audit.take_pending_push(stranded.pending_id)
    if row is None:
        return False
    repo = store.repos.repository_by_id(row.repository_id)
    if repo is None:
        return True
    zero = "0" * 40
    landed = [u for u in stranded.updates
              if now_on_disk.get(u.ref, zero).ljust(len(u.new), "0") == u.new]
    missed = [u for u in stranded.updates if u not in landed]
    who: dict[str, Any] = {
        "actor": row.actor, "actor_user_id": row.actor_user_id, "client_ip": row.client_ip,
        "credential": row.credential, "recovered": True,
    }
    if landed:
        if disk is not None:
            if disk.main_branch is not None and repo.mainbranch != disk.main_branch:
                repo.mainbranch = disk.main_branch
            repo.size = disk.size
        repo.updated_on = utcnow()
        store.audit.record("repository.push", target=_target(repo),
                           refs=[u.as_dict() for u in landed], **who)
        if disk is not None and disk.changes:
            applied = {(u.ref, u.old, u.new) for u in landed}
            events.push(_recovering(store, row.actor_user_id, row.credential, base_url), repo,
                        [c for c in disk.changes if (c.ref, c.old, c.new) in applied])
    if missed:
        store.audit.record("repository.push.rejected", target=_target(repo),
                           refs=[u.as_dict() for u in missed], **who)
    return True


def _recovering(
    store: Store, user_id: int | None, credential: str, base_url: str | None
) -> Caller:
    """The caller a recovered push's webhook events name as their actor: the user who
    pushed (a token acting as itself is not known any more: no actor)."""
    user = store.accounts.user_by_id(user_id) if user_id is not None else None
    try:
        kind = CredentialKind(credential)
    except ValueError:
        kind = CredentialKind.ANONYMOUS
    principal = (
        UserPrincipal(user.id, user.username, user.is_site_admin) if user is not None
        else ANONYMOUS
    )
    return Caller(store, AuthContext(principal, kind), base_url=base_url)


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
    record_push(caller, repo, updates, settle_on_disk(git, repo.storage_name, updates))


# -- push protection (docs/push-protection.md) -------------------------------------------------


def protection_on(repo: Repository, site: bool) -> bool:
    """Whether a live secret refuses a push to `repo`: its own setting, else the site's."""
    return site if repo.push_protection is None else repo.push_protection


@dataclass(frozen=True)
class ScanPlan:
    """That a push's new objects are to be scanned, and what a live secret found does:
    `refuse` the push (protection on), or else be revoked (a public repository)."""

    storage_name: str
    refuse: bool


def scan_plan(repo: Repository, site: bool) -> ScanPlan | None:
    """None when nothing is to be scanned: protection off for a private repository."""
    if protection_on(repo, site):
        return ScanPlan(repo.storage_name, refuse=True)
    if not repo.is_private:
        return ScanPlan(repo.storage_name, refuse=False)
    return None


@dataclass(frozen=True)
class Finding:
    """A live credential found in a pushed object (never its secret)."""

    where: str
    leak: Leak

    @property
    def line(self) -> str:
        return f"  {self.where}: {self.leak.label}"


def live_findings(
    caller: Caller, registry: CredentialRegistry, candidates: Sequence[Candidate]
) -> list[Finding]:
    """The candidates that are live credentials now (the keyed hash looked up by its kind)."""
    findings = []
    for candidate in candidates:
        leak = registry.leaked(caller.store, candidate.secret)
        if leak is not None:
            findings.append(Finding(candidate.where, leak))
    return findings


def _listing(findings: Sequence[Finding]) -> str:
    lines = [f.line for f in findings[:NAMED_FINDINGS]]
    if len(findings) > NAMED_FINDINGS:
        lines.append(f"  ... and {len(findings) - NAMED_FINDINGS} more")
    return "\n".join(lines)


def judge_secrets(
    caller: Caller,
    registry: CredentialRegistry,
    repo: Repository,
    plan: ScanPlan,
    scanned: ScanResult,
) -> str:
    """What the live secrets a push carries mean for it, once its objects are scanned.

    Protection on: any live one refuses the push (Forbidden, naming each file and kind; the
    caller audits the refusal), as does a push with too many candidates to check. Off, on a
    public repository: each live one is revoked now, audited with its owner as the target,
    and the push goes on; the answer is the warning `git push` shows."""
    findings = live_findings(caller, registry, scanned.candidates)
    if plan.refuse:
        if findings:
            raise Forbidden(
                "it contains live Gitward credentials (push protection):\n"
                + _listing(findings)
                + "\nRemove them from every commit of the push (they have not been "
                "published: nothing of this push was applied), then push again."
            )
        if scanned.too_many:
            raise Forbidden(
                f"it contains more than {MAX_CANDIDATES} strings shaped as Gitward "
                "credentials; push protection cannot check them all."
            )
        return ""
    for finding in findings:
        leak = finding.leak
        registry.revoke_leaked(caller.store, leak)
        caller.audit(
            "credential.leak.revoke",  # what services/leak_notices shows the owner
            target=leak.owner,
            kind=leak.label,
            credential_id=leak.credential_id,
            name=leak.name,
            repository=_target(repo),
            path=finding.where,
        )
    if not findings:
        return ""
    caller.store.credentials.changed()
    log.warning(
        "revoked %d live credential(s) pushed to the public repository %s",
        len(findings), _target(repo),
    )
    return (
        "warning: this push to a public repository contains live Gitward credentials; "
        "they have been revoked and their owners told:\n" + _listing(findings)
    )
