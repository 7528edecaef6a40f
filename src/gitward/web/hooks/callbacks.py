"""What the hooks' callbacks do, in a worker thread: each in its own unit of work.

pre-receive authenticates the push's credential again, now (a token revoked since the push
began fails here), and asks the push service whether every update is allowed. post-receive
hands the applied updates to the push service in a unit of work that takes SQLite's write
lock up front and is retried, so that many pushes finishing at once all get their audit
event. Nothing here raises to the hook surface: each returns what the hook shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from gitward.credentials.registry import AuthenticationFailed, AuthenticationThrottled
from gitward.domain.identity import AuthContext
from gitward.gitstore import reader as git_reader
from gitward.gitstore import secret_scan
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.secret_scan import ScanResult
from gitward.runtime import Runtime
from gitward.services import pushes
from gitward.services.caller import Caller
from gitward.services.errors import ServiceError
from gitward.storage.models import Repository, utcnow
from gitward.storage.store import Store
from gitward.web.pipeline import Ingress, Pipeline

log = logging.getLogger(__name__)

T = TypeVar("T")
# A unit of work that fails on a lock or a lost connection is rolled back whole, so it is
# safe to run again: up to this many times, backing off from 50 ms to 2 s between tries.
ATTEMPTS = 8
#: Past a push's time limit, how long before another host may recover its outbox row.
RECOVERY_GRACE = 60


@dataclass(frozen=True)
class PushGrant:
    """What the check before git started found: the credential as presented, and where."""

    authorization: str | None = field(repr=False)  # a secret: held for the push, never shown
    client_ip: str | None
    repository_id: int
    ctx: AuthContext
    base_url: str | None = None  # where the push's request links started (web/hosts)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    message: str
    ctx: AuthContext | None = None
    #: Set on an allowed pre-receive: the pushed objects are to be scanned for secrets.
    scan: pushes.ScanPlan | None = None
    #: Set when the push's ref restriction refused it: what `git push` is to show for each
    #: ref (report-status's `ng <ref> <reason>`).
    refs: Mapping[str, str] | None = None


def retrying(work: Callable[[], T]) -> T:
    """Run `work` (one whole unit of work) again while the database says it is busy."""
    delay = 0.05
    for attempt in range(ATTEMPTS):
        try:
            return work()
        except OperationalError:
            if attempt == ATTEMPTS - 1:
                raise
            log.info("database busy during a push callback; trying again", exc_info=True)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def write_unit(runtime: Runtime) -> AbstractContextManager[Store]:
    """A unit of work that takes the write lock when it begins (SQLite BEGIN IMMEDIATE)."""
    return runtime.unit_of_work(write=True)


def pre_receive(
    pipeline: Pipeline, grant: PushGrant, updates: Sequence[RefUpdate],
    quarantine: str | None = None,
) -> Verdict:
    """Authenticate again, through the pipeline like any request, and check every update;
    refuse the whole push on any failure. Which updates are fast-forwards is worked out
    first, with git and outside any unit of work, when the credential is fast-forward only."""
    refused: tuple[AuthContext, ServiceError] | None = None
    storage_name: str | None = None
    runtime = pipeline.runtime
    ingress = Ingress(authorization=grant.authorization, client_ip=grant.client_ip, write=False)
    forwards = (
        _fast_forwards(runtime, grant, updates, quarantine)
        if pushes.needs_fast_forwards(grant.ctx)
        else None
    )

    def check(caller: Caller) -> Verdict:
        nonlocal refused, storage_name
        repo = caller.store.repos.repository_by_id(grant.repository_id)
        if repo is None:
            return Verdict(False, "push refused: the repository no longer exists")
        storage_name = repo.storage_name
        try:
            pushes.check_push(caller, repo, updates, forwards)
        except pushes.RefsRefused as error:
            refused = (caller.ctx, error)
            return Verdict(False, f"push refused: {error.message}", refs=error.reasons)
        except ServiceError as error:
            refused = (caller.ctx, error)
            return Verdict(False, f"push refused: {error.message}")
        plan = pushes.scan_plan(repo, runtime.settings.push_protection)
        return Verdict(True, "", caller.ctx, plan)

    try:
        verdict = retrying(lambda: pipeline.run(ingress, check))
    except AuthenticationFailed as failure:  # audited by the pipeline
        return Verdict(False, f"push refused: {failure.message}")
    except AuthenticationThrottled as throttled:
        return Verdict(False, f"push refused: {throttled.message}")
    except Exception:
        log.exception("the pre-receive check of a push failed")
        return Verdict(False, "push refused: Gitward could not check this push; try again")
    if verdict.allowed and storage_name is not None and verdict.ctx is not None:
        # Once the unit of work is closed: counting refs is a git process.
        try:
            pushes.check_ref_limit(
                runtime.git, storage_name, updates, runtime.settings.max_refs_per_repository
            )
        except ServiceError as error:
            refused = (verdict.ctx, error)
            verdict = Verdict(False, f"push refused: {error.message}")
        except Exception:
            log.exception("counting the refs of a push's repository failed")
            return Verdict(False, "push refused: Gitward could not check this push; try again")
    if refused is not None:
        _audit_refused(runtime, grant, refused[0], updates, refused[1])
    return verdict


def _fast_forwards(
    runtime: Runtime, grant: PushGrant, updates: Sequence[RefUpdate], quarantine: str | None
) -> dict[str, bool] | None:
    """Which updates are fast-forwards (None if git could not tell: then none counts as
    one, and a fast-forward-only token's updates of existing refs are refused)."""
    try:
        storage = retrying(lambda: _storage_name(runtime, grant))
        if storage is None:
            return None
        path = runtime.git.path_of(storage)
        return git_reader.fast_forwards(path, secret_scan.quarantine_of(path, quarantine),
                                        updates)
    except Exception:
        log.exception("could not tell which updates of a push are fast-forwards")
        return None


def judge_secrets(
    runtime: Runtime,
    grant: PushGrant,
    ctx: AuthContext,
    plan: pushes.ScanPlan,
    updates: Sequence[RefUpdate],
    scanned: ScanResult,
) -> Verdict:
    """Once the pushed objects are scanned: look the candidates up, and refuse the push or
    revoke what is live (in a write unit, retried while the database is busy)."""
    refused: ServiceError | None = None

    def work() -> Verdict:
        nonlocal refused
        refused = None
        with write_unit(runtime) as store:
            repo = store.repos.repository_by_id(grant.repository_id)
            if repo is None:
                return Verdict(False, "push refused: the repository no longer exists")
            caller = Caller(store, ctx, grant.client_ip, grant.base_url)
            try:
                warning = pushes.judge_secrets(caller, runtime.credentials, repo, plan, scanned)
            except ServiceError as error:
                refused = error
                return Verdict(False, f"push refused: {error.message}")
            return Verdict(True, warning, ctx)

    try:
        verdict = retrying(work)
    except Exception:
        log.exception("the push protection check of a push failed")
        return Verdict(False, "push refused: Gitward could not check this push; try again")
    if refused is not None:
        _audit_refused(runtime, grant, ctx, updates, refused)
    return verdict


def refused_unread(
    runtime: Runtime, grant: PushGrant, ctx: AuthContext, updates: Sequence[RefUpdate]
) -> Verdict:
    """Push protection could not read the pushed objects: refused (it fails closed), and
    audited as any refusal."""
    error = ServiceError("Gitward could not read the pushed objects (push protection)")
    _audit_refused(runtime, grant, ctx, updates, error)
    return Verdict(False, f"push refused: {error.message}")


def _audit_refused(
    runtime: Runtime,
    grant: PushGrant,
    ctx: AuthContext,
    updates: Sequence[RefUpdate],
    error: ServiceError,
) -> None:
    _record(
        runtime, grant, ctx, updates, "a refused push",
        lambda caller, repo: pushes.record_refused(caller, repo, updates, error),
    )


def _record(
    runtime: Runtime,
    grant: PushGrant,
    ctx: AuthContext,
    updates: Sequence[RefUpdate],
    what: str,
    record: Callable[[Caller, Repository], None],
    pending_id: int | None = None,
) -> bool:
    """`record(caller, repository)` in a write unit, retried while the database is busy,
    with the push's outbox row taken in the same unit; False (logged with every update) if
    it still fails — the outbox row stays, and the recovery writes the event later."""

    def work() -> None:
        with write_unit(runtime) as store:
            repo = store.repos.repository_by_id(grant.repository_id)
            if repo is not None:
                record(Caller(store, ctx, grant.client_ip, grant.base_url), repo)
            pushes.settle_pending(store, pending_id)

    try:
        retrying(work)
    except Exception:
        log.exception(
            "could not record %s to repository %s by %s: %s",
            what,
            grant.repository_id,
            _actor(ctx),
            [u.as_dict() for u in updates],
        )
        return False
    return True


def post_receive(
    runtime: Runtime, grant: PushGrant, ctx: AuthContext, updates: Sequence[RefUpdate],
    pending_id: int | None = None,
) -> Verdict:
    """Record the applied updates (audit event included); never fails the push. The disk is
    read first: git subprocesses must not run while SQLite's write lock is held."""
    warning = Verdict(False, "warning: Gitward could not record this push; its refs are updated")
    try:
        storage = retrying(lambda: _storage_name(runtime, grant))
        if storage is None:
            return Verdict(True, "")  # the repository is gone: nothing to record
        disk = pushes.settle_on_disk(runtime.git, storage, updates)
    except Exception:
        log.exception("could not read repository %s after a push", grant.repository_id)
        return warning
    recorded = _record(
        runtime, grant, ctx, updates, "a push",
        lambda caller, repo: pushes.record_push(caller, repo, updates, disk), pending_id,
    )
    return Verdict(True, "") if recorded else warning  # the refs have moved all the same


def unreported(
    runtime: Runtime, grant: PushGrant, ctx: AuthContext, updates: Sequence[RefUpdate],
    pending_id: int | None = None,
) -> None:
    """After git exited: updates allowed by pre-receive that post-receive did not report.

    Those whose ref now holds their new value were applied (the post-receive callback was
    lost): they are recorded as a push. The others git refused: audited as rejected.
    """
    try:
        repo = retrying(lambda: _storage_name(runtime, grant))
        if repo is None:
            return
        now = runtime.git.ref_values(repo, [u.ref for u in updates])
    except Exception:
        log.exception("could not read the refs of repository %s after a push", grant.repository_id)
        now = {}
    zero = "0" * 40
    landed = [u for u in updates if now.get(u.ref, zero).ljust(len(u.new), "0") == u.new]
    refused = [u for u in updates if u not in landed]
    if landed:
        post_receive(runtime, grant, ctx, landed, pending_id)
    if refused:
        _record(
            runtime, grant, ctx, refused, "the rejected updates of a push",
            lambda caller, repo: pushes.record_rejected(caller, repo, refused), pending_id,
        )


def note_pending(
    runtime: Runtime, grant: PushGrant, ctx: AuthContext, updates: Sequence[RefUpdate],
    seconds_left: float,
) -> int | None:
    """The push's outbox row, written (and committed) before git may move its refs; None if
    it could not be written, and then the push is refused: no ref moves unrecorded."""

    def work() -> int | None:
        with write_unit(runtime) as store:
            repo = store.repos.repository_by_id(grant.repository_id)
            if repo is None:
                return None
            deadline = utcnow() + timedelta(seconds=max(seconds_left, 0) + RECOVERY_GRACE)
            caller = Caller(store, ctx, grant.client_ip, grant.base_url)
            return pushes.note_pending(caller, repo, updates, deadline)

    try:
        return retrying(work)
    except Exception:
        log.exception("could not write the outbox row of a push to %s", grant.repository_id)
        return None


def recover(runtime: Runtime) -> int:
    """Write the events of pushes whose process died before recording them (a crash, a
    `kill -9`): each outbox row whose push cannot be running any more is taken, and the
    repository says which of its updates landed. Run at start and now and then by every
    process; a row is recovered once. How many were."""
    with runtime.unit_of_work() as store:
        stranded = pushes.stranded_pushes(store, utcnow())
    done = 0
    for push in stranded:
        try:
            now = runtime.git.ref_values(push.storage_name, [u.ref for u in push.updates])
            disk = (
                pushes.settle_on_disk(runtime.git, push.storage_name, push.updates)
                if now else None
            )
        except Exception:
            log.exception("could not read the refs of a stranded push (outbox row %s)",
                          push.pending_id)
            continue

        def work(push: pushes.Stranded = push, now: dict[str, str] = now,
                 disk: pushes.OnDisk | None = disk) -> bool:
            with write_unit(runtime) as store:
                return pushes.recover_pending(store, push, now, disk,
                                              runtime.settings.base_url)

        try:
            if retrying(work):
                done += 1
                log.warning("recorded a push its process did not (outbox row %s)",
                            push.pending_id)
        except Exception:
            log.exception("could not recover the push of outbox row %s", push.pending_id)
    return done


def _storage_name(runtime: Runtime, grant: PushGrant) -> str | None:
    with runtime.unit_of_work() as store:
        repo = store.repos.repository_by_id(grant.repository_id)
        return repo.storage_name if repo is not None else None


def _actor(ctx: AuthContext) -> str:
    user = ctx.user
    return f"user:{user.username}" if user is not None else ctx.credential.value
