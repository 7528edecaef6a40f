"""The push callbacks behind the git hooks, in process: records, the fallback when
post-receive never called back, and the SQLite write lock taken up front."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import socket
import sqlite3
import stat
import subprocess
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.gitstore.hook_client import call
from gitward.gitstore.hooks import RefUpdate, parse_update
from gitward.gitstore.store import git_env
from gitward.runtime import Runtime
from gitward.storage.models import AuditEvent, PendingPush, utcnow
from gitward.web.hooks import callbacks
from gitward.web.hooks import server as hook_server
from gitward.web.hooks.callbacks import PushGrant
from gitward.web.pipeline import Pipeline

from .conftest import PASSWORD, World, basic

ZERO = "0" * 40


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=cwd, env=git_env(), check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


def _setup(world: World, runtime: Runtime, tmp_path: Path) -> tuple[PushGrant, Path, Path]:
    owner = world.user("owner")
    world.workspace(owner, "ws")
    world.project(owner, "ws", "P")
    world.repository(owner, "ws", "r", "P")
    with runtime.unit_of_work() as store:
        workspace = store.repos.workspace_by_slug("ws")
        assert workspace is not None
        repo = store.repos.repository_by_slug(workspace.id, "r")
        assert repo is not None
        repo_id, bare = repo.id, runtime.git.path_of(repo.storage_name)
    ctx = AuthContext(UserPrincipal(owner.id, owner.username), CredentialKind.PASSWORD)
    work = tmp_path / "work"
    _git("init", "-q", "-b", "trunk", str(work))
    return PushGrant(None, "192.0.2.7", repo_id, ctx), bare, work


def _commit(work: Path, name: str) -> str:
    (work / name).write_text(name)
    _git("add", name, cwd=work)
    _git("commit", "-qm", name, cwd=work)
    return _git("rev-parse", "HEAD", cwd=work)


def _events(runtime: Runtime) -> list[AuditEvent]:
    with runtime.unit_of_work() as store:
        rows = store.open().query(AuditEvent).order_by(AuditEvent.id).all()
        return [r for r in rows if r.action.startswith("repository.push")]


def test_post_receive_records_every_update_and_settles_the_main_branch(world, runtime, tmp_path):
    grant, bare, work = _setup(world, runtime, tmp_path)
    head = _commit(work, "a")
    _git("push", "-q", str(bare), "trunk", cwd=work)
    verdict = callbacks.post_receive(
        runtime, grant, grant.ctx, [RefUpdate(ZERO, head, "refs/heads/trunk")]
    )
    assert verdict.allowed
    (event,) = _events(runtime)
    assert (event.action, event.actor, event.client_ip) == (
        "repository.push", "user:owner", "192.0.2.7")
    assert event.target == "repository:ws/r"
    assert event.details["refs"] == [{"ref": "refs/heads/trunk", "old": ZERO, "new": head}]
    with runtime.unit_of_work() as store:
        repo = store.repos.repository_by_id(grant.repository_id)
        assert repo is not None and repo.mainbranch == "trunk"


def test_updates_post_receive_never_reported_are_recorded_from_the_repository(
    world, runtime, tmp_path
):
    """If the post-receive callback was lost, the refs say what landed: it is recorded as a
    push; what did not land is audited as rejected. Nothing goes unaudited."""
    grant, bare, work = _setup(world, runtime, tmp_path)
    landed = _commit(work, "a")
    _git("push", "-q", str(bare), "trunk", cwd=work)
    lost = _commit(work, "b")  # never pushed: git refused it, say
    callbacks.unreported(
        runtime,
        grant,
        grant.ctx,
        [RefUpdate(ZERO, landed, "refs/heads/trunk"), RefUpdate(ZERO, lost, "refs/heads/other")],
    )
    pushed, rejected = _events(runtime)
    assert pushed.action == "repository.push"
    assert pushed.details["refs"] == [{"ref": "refs/heads/trunk", "old": ZERO, "new": landed}]
    assert rejected.action == "repository.push.rejected"
    assert rejected.details["refs"] == [{"ref": "refs/heads/other", "old": ZERO, "new": lost}]


def test_a_deletion_that_landed_counts_as_landed(world, runtime, tmp_path):
    grant, bare, work = _setup(world, runtime, tmp_path)
    head = _commit(work, "a")
    _git("push", "-q", str(bare), "trunk", "trunk:gone", cwd=work)
    _git("push", "-q", str(bare), ":gone", cwd=work)
    callbacks.unreported(runtime, grant, grant.ctx, [RefUpdate(head, ZERO, "refs/heads/gone")])
    (event,) = _events(runtime)
    assert event.action == "repository.push"


def _pending(runtime: Runtime) -> list[PendingPush]:
    with runtime.unit_of_work() as store:
        return list(store.audit.pending_pushes(100))


def _dead_runner() -> str:
    """A process of this host that does not exist (pid beyond Linux's pid_max)."""
    return f"{socket.gethostname()}:{2**22 + 1}"


def _strand(runtime: Runtime, pending_id: int, runner: str) -> None:
    with runtime.unit_of_work(write=True) as store:
        row = store.open().get(PendingPush, pending_id)
        assert row is not None
        row.runner = runner


def test_the_outbox_row_goes_with_the_event(world, runtime, tmp_path):
    """Written before git may move a ref, taken in the unit of work that writes the event."""
    grant, bare, work = _setup(world, runtime, tmp_path)
    head = _commit(work, "a")
    updates = [RefUpdate(ZERO, head, "refs/heads/trunk")]
    pending = callbacks.note_pending(runtime, grant, grant.ctx, updates, 3600)
    assert pending is not None
    (row,) = _pending(runtime)
    assert (row.actor, row.client_ip, row.updates) == (
        "user:owner", "192.0.2.7", [u.as_dict() for u in updates])
    _git("push", "-q", str(bare), "trunk", cwd=work)
    assert callbacks.post_receive(runtime, grant, grant.ctx, updates, pending).allowed
    assert _pending(runtime) == []
    assert [e.action for e in _events(runtime)] == ["repository.push"]
    # Only a push whose process is gone, or whose time is up, is anyone else's to recover.
    pending = callbacks.note_pending(runtime, grant, grant.ctx, updates, 3600)
    assert callbacks.recover(runtime) == 0 and len(_pending(runtime)) == 1


def test_a_push_whose_process_died_is_recorded_from_its_outbox_row(world, runtime, tmp_path):
    """The server killed after pre-receive allowed a push, before post-receive recorded it:
    the refs that moved are recorded as a push, the rest as rejected, once, by whichever
    process recovers it first; the repository's row is settled as post-receive would."""
    grant, bare, work = _setup(world, runtime, tmp_path)
    landed = _commit(work, "a")
    lost = _commit(work, "b")
    updates = [RefUpdate(ZERO, landed, "refs/heads/trunk"),
               RefUpdate(ZERO, lost, "refs/heads/never")]
    pending = callbacks.note_pending(runtime, grant, grant.ctx, updates, 3600)
    assert pending is not None
    _git("push", "-q", str(bare), f"{landed}:refs/heads/trunk", cwd=work)  # git moved one ref
    _strand(runtime, pending, _dead_runner())  # ... and the server died
    assert callbacks.recover(runtime) == 1
    assert callbacks.recover(runtime) == 0  # once
    pushed, rejected = _events(runtime)
    assert (pushed.action, pushed.actor, pushed.client_ip) == (
        "repository.push", "user:owner", "192.0.2.7")
    assert pushed.details["refs"] == [updates[0].as_dict()] and pushed.details["recovered"]
    assert rejected.action == "repository.push.rejected"
    assert rejected.details["refs"] == [updates[1].as_dict()]
    assert _pending(runtime) == []
    with runtime.unit_of_work() as store:
        repo = store.repos.repository_by_id(grant.repository_id)
        assert repo is not None and repo.mainbranch == "trunk" and repo.size > 0


def test_a_push_past_its_time_limit_is_recovered_from_another_host(world, runtime, tmp_path):
    grant, _, work = _setup(world, runtime, tmp_path)
    head = _commit(work, "a")
    updates = [RefUpdate(ZERO, head, "refs/heads/trunk")]
    pending = callbacks.note_pending(runtime, grant, grant.ctx, updates, 0)
    assert pending is not None
    _strand(runtime, pending, "another-host:1")
    assert callbacks.recover(runtime) == 0  # within the grace after its deadline
    with runtime.unit_of_work(write=True) as store:
        row = store.open().get(PendingPush, pending)
        assert row is not None
        row.deadline = utcnow() - timedelta(seconds=1)
    assert callbacks.recover(runtime) == 1
    (rejected,) = _events(runtime)  # git never moved it
    assert rejected.action == "repository.push.rejected" and rejected.details["recovered"]


def test_write_unit_holds_the_sqlite_write_lock_from_its_start(sqlite_settings, tmp_path):
    """A transaction that will write begins IMMEDIATE: no other writer can slip in between
    its first read and its first write (which would fail it with "database is locked")."""
    runtime = Runtime.open(sqlite_settings)
    path = sqlite_settings.sqlalchemy_url.removeprefix("sqlite:///")
    outcome: list[str] = []

    def other_writer() -> None:
        db = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            outcome.append("got the lock")
        except sqlite3.OperationalError as error:
            outcome.append(str(error))
        finally:
            db.close()

    try:
        with callbacks.write_unit(runtime) as store:
            store.repos.repository_by_id(1)  # a read only: a deferred BEGIN would hold no lock yet
            thread = threading.Thread(target=other_writer)
            thread.start()
            thread.join()
        assert outcome == ["database is locked"]
        outcome.clear()
        other_writer()
        assert outcome == ["got the lock"]
    finally:
        runtime.close()


@pytest.mark.parametrize("hook_update", [
    ["0" * 40, "1" * 40],
    ["0" * 40, "z" * 40, "refs/heads/x"],
    ["0" * 40, "1" * 64, "refs/heads/x"],
    ["0" * 40, "1" * 40, "main"],
    ["0" * 40, "1" * 40, "refs/heads/a b"],
    "0 1 refs/heads/x",
])
def test_malformed_updates_are_refused(hook_update):

    with pytest.raises(ValueError):
        parse_update(hook_update)


def test_hook_socket_is_private_and_stale_sockets_of_this_host_go(sqlite_settings):


    # A short data dir, so that the socket fits in sun_path whatever pytest's tmp_path is.
    short = Path(tempfile.mkdtemp(prefix="gw-"))
    settings = dataclasses.replace(sqlite_settings, data_dir=short / "data")
    runtime = Runtime.open(settings)
    run = settings.data_dir.resolve() / "run"
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    stale = run / f"hooks-{hook_server._HOST}-999999.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))  # closed without unlinking: what a killed process leaves
    live = socket.socket(socket.AF_UNIX)
    alive = run / f"hooks-{hook_server._HOST}-999998.sock"
    live.bind(str(alive))
    live.listen()
    other_host = run / "hooks-00000000-999997.sock"
    other_host.write_text("")

    async def scenario() -> Path:
        hooks = hook_server.HookServer(Pipeline(runtime))
        await hooks.start()
        assert hooks.socket_path is not None
        path = hooks.socket_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent == run
        await hooks.close()
        return path

    try:
        path = asyncio.run(scenario())
        assert not path.exists()
        assert not stale.exists()
        assert alive.exists() and other_host.exists()
    finally:
        live.close()
        runtime.close()
        shutil.rmtree(short, ignore_errors=True)


def test_pre_receive_after_the_time_limit_is_refused(world, runtime, tmp_path):
    """A push past its time limit cannot be let through, whatever its credential."""
    # Its update names no real object: push protection (which would fail to read it) is off.
    runtime.settings = dataclasses.replace(runtime.settings, push_protection=False)
    grant, _bare, _work = _setup(world, runtime, tmp_path)
    grant = dataclasses.replace(grant, authorization=basic("owner", PASSWORD)["Authorization"])

    async def scenario() -> list[dict[str, object]]:
        hooks = hook_server.HookServer(Pipeline(runtime))
        await hooks.start()
        try:
            answers = []
            for timeout in (60.0, 0.05):
                session = hooks.open_push(grant, timeout)
                await asyncio.sleep(0.1)
                env = session.env()
                request = {"hook": "pre-receive", "push": env["GITWARD_HOOK_PUSH"],
                           "nonce": env["GITWARD_HOOK_NONCE"],
                           "updates": [[ZERO, "1" * 40, "refs/heads/trunk"]]}
                answers.append(await asyncio.to_thread(call, env["GITWARD_HOOK_SOCKET"], request))
                hooks.end_push(session)
            return answers
        finally:
            await hooks.close()

    in_time, late = asyncio.run(scenario())
    assert in_time == {"ok": True, "message": ""}
    assert late == {"ok": False, "message": "push refused: it took longer than allowed"}
