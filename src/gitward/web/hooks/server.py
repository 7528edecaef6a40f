"""The internal surface the git hooks call back on: a Unix socket of the serving process.

Each process that serves Git over HTTP listens on its own socket (mode 0600, in a 0700
directory under the data dir) and names it, with a push id and a random nonce, in the
environment of every receive-pack it starts. The nonce is held only in this process's memory,
is valid for that one push only while its receive-pack runs, and is compared in constant
time. Nothing of this is reachable over TCP.

The protocol is one JSON object per connection each way, newline-terminated:
`{"hook", "push", "nonce", "updates": [[old, new, ref], ...]}` in (pre-receive adds
`"quarantine"`: where git holds the pushed objects, for push protection), `{"ok", "message"}` out,
where `message` is text for git's stderr (`git push` shows it as `remote: ...`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from gitward.domain.identity import AuthContext
from gitward.gitstore import secret_scan
from gitward.gitstore.hooks import (
    ENV_NONCE,
    ENV_PUSH,
    ENV_SOCKET,
    RefUpdate,
    parse_update,
    write_hooks_dir,
)
from gitward.web.hooks import callbacks
from gitward.web.hooks.callbacks import PushGrant, Verdict
from gitward.web.pipeline import Pipeline

log = logging.getLogger(__name__)

# The longest AF_UNIX path Linux takes is 107 bytes (sun_path is 108 with its NUL); macOS 103.
MAX_SOCKET_PATH = 100
MAX_REQUEST = 64 << 20
READ_TIMEOUT = 30.0
# How long shutdown waits for audit writes of pushes that have just ended.
CLOSE_GRACE = 30.0
#: How often each process looks for pushes left unrecorded by a process that died.
RECOVERY_INTERVAL = 60.0


@dataclass
class PushSession:
    """One running push, as the hooks see it."""

    push_id: str
    nonce: str = field(repr=False)
    grant: PushGrant
    deadline: float
    socket_path: Path
    # Set by pre-receive: the context the push was re-authenticated with, what it asked for.
    ctx: AuthContext | None = None
    attempted: list[RefUpdate] = field(default_factory=list)
    applied: list[RefUpdate] = field(default_factory=list)
    # The push's outbox row, written before pre-receive lets git move a ref.
    pending_id: int | None = None
    # Set by a pre-receive that the credential's ref restriction refused: what `git push`
    # is to show for each ref, in receive-pack's report (web/git_http rewrites it).
    ref_reasons: dict[str, str] = field(default_factory=dict)
    # Once false, no pre-receive is allowed any more (time is up, or git has exited).
    open: bool = True

    def env(self) -> dict[str, str]:
        return {
            ENV_SOCKET: str(self.socket_path),
            ENV_PUSH: self.push_id,
            ENV_NONCE: self.nonce,
        }

    def accepts(self, nonce: str) -> bool:
        return hmac.compare_digest(self.nonce.encode(), nonce.encode())


# Several hosts may share a data dir: a socket's name says which host made it.
_HOST = hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def _socket_path(data_dir: Path) -> Path:
    """Where this process listens: under the data dir if the path fits in sun_path, else in a
    private temporary directory. Sockets left by dead processes of this host are removed."""
    run = data_dir.resolve() / "run"
    name = f"hooks-{_HOST}-{os.getpid()}.sock"
    if len(os.fsencode(run / name)) > MAX_SOCKET_PATH:
        return Path(tempfile.mkdtemp(prefix="gitward-")) / name
    run.mkdir(mode=0o700, exist_ok=True)
    os.chmod(run, 0o700)
    for old in run.glob(f"hooks-{_HOST}-*.sock"):
        if not _listening(old):
            with contextlib.suppress(OSError):
                old.unlink()
    return run / name


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # busy, or not ours to judge: leave it
        return True


class HookServer:
    """The callback socket of this process, and the pushes it is currently running."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.runtime = runtime = pipeline.runtime
        self.hooks_dir = runtime.settings.data_dir.resolve() / "hooks"
        self.socket_path: Path | None = None
        self._server: asyncio.AbstractServer | None = None
        self._starting: asyncio.Task[None] | None = None
        self._pushes: dict[str, PushSession] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._recovery: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Write the hooks directory and listen; once, however many callers ask."""
        failed = self._starting is not None and self._starting.done() and (
            self._starting.cancelled() or self._starting.exception() is not None
        )
        if self._starting is None or failed:
            self._starting = asyncio.ensure_future(self._start())  # first time, or again
        await asyncio.shield(self._starting)

    async def ready(self) -> None:
        """Started, with both hooks in place, executable and ours: checked before every push,
        since git applies a push without a hook it cannot find or run, and runs whatever a
        hook says. `write_hooks_dir` rewrites one that differs; HooksUnusable if they still
        cannot run."""
        await self.start()
        await asyncio.to_thread(write_hooks_dir, self.hooks_dir)

    async def _start(self) -> None:
        await asyncio.to_thread(write_hooks_dir, self.hooks_dir)
        path = await asyncio.to_thread(_socket_path, self.runtime.settings.data_dir)
        self._server = await asyncio.start_unix_server(
            self._handle, path=str(path), limit=MAX_REQUEST, backlog=128
        )
        os.chmod(path, 0o600)
        self.socket_path = path
        self._recovery = asyncio.ensure_future(self._recover_now_and_then())

    async def _recover_now_and_then(self) -> None:
        """The events of pushes whose process died before recording them (outbox rows):
        at start, then every RECOVERY_INTERVAL, in every process (each row once)."""
        while True:
            try:
                await self.pipeline.offload(functools.partial(callbacks.recover, self.runtime))
            except Exception:
                log.exception("recovering stranded pushes failed; trying again later")
            await asyncio.sleep(RECOVERY_INTERVAL)

    async def close(self) -> None:
        """Stop listening once the audit writes of ended pushes are done (bounded)."""
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recovery
            self._recovery = None
        if self._background:
            await asyncio.wait(set(self._background), timeout=CLOSE_GRACE)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        if self.socket_path is not None:
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
            if self.socket_path.parent.name.startswith("gitward-"):
                with contextlib.suppress(OSError):
                    self.socket_path.parent.rmdir()
            self.socket_path = None

    def open_push(self, grant: PushGrant, timeout: float) -> PushSession:
        """Register a push for the lifetime of its receive-pack; its env() goes to git."""
        assert self.socket_path is not None, "start() the hook server first"
        session = PushSession(
            push_id=secrets.token_hex(8),
            nonce=secrets.token_urlsafe(32),
            grant=grant,
            deadline=time.monotonic() + timeout,
            socket_path=self.socket_path,
        )
        self._pushes[session.push_id] = session
        return session

    def end_push(self, session: PushSession) -> None:
        """git has exited: the push's nonce is dead; account for what was not applied."""
        session.open = False
        if self._pushes.pop(session.push_id, None) is not None:
            self._after(session)

    def _after(self, session: PushSession) -> None:
        """Once git has exited: account for what pre-receive allowed and git did not report.

        Normally post-receive reported every applied update. If its callback never arrived
        (git was stopped meanwhile, or the hook could not connect), the repository itself
        says which of the updates landed: those are recorded as a push, the rest audited as
        rejected (e.g. the ref was locked or moved by a concurrent push).
        """
        if session.ctx is None or not session.attempted:
            return
        applied = set(session.applied)
        left = [u for u in session.attempted if u not in applied]
        if left:
            self._keep(
                asyncio.ensure_future(
                    self.pipeline.offload(
                        functools.partial(
                            callbacks.unreported, self.runtime, session.grant, session.ctx,
                            left, session.pending_id,
                        )
                    )
                )
            )

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._read_and_answer(reader)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the hook went away (its push was stopped): nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_and_answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        except (ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "message": "push refused: too many ref updates"}
        except TimeoutError:
            return {"ok": False, "message": "push refused: the hook did not say anything"}
        try:
            return await self._answer(line)
        except Exception:
            log.exception("a hook callback failed")
            return {"ok": False, "message": "push refused: Gitward could not check this push"}

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            hook = request["hook"]
            push_id = request["push"]
            nonce = request["nonce"]
            updates = [parse_update(u) for u in request["updates"]]
            quarantine = request.get("quarantine")
            if not (isinstance(hook, str) and isinstance(push_id, str) and isinstance(nonce, str)):
                raise TypeError
            if quarantine is not None and not isinstance(quarantine, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "message": "push refused: the hook's request is malformed"}
        session = self._pushes.get(push_id)
        if session is None or not session.accepts(nonce):
            return {"ok": False, "message": "push refused: this push is not running any more"}
        if hook == "pre-receive":
            return await self._pre_receive(session, updates, quarantine)
        if hook == "post-receive":
            return await self._post_receive(session, updates)
        return {"ok": False, "message": f"push refused: unknown hook {hook[:40]!r}"}

    async def _pre_receive(
        self, session: PushSession, updates: list[RefUpdate], quarantine: str | None = None
    ) -> dict[str, Any]:
        if not session.open or time.monotonic() > session.deadline:
            return {"ok": False, "message": "push refused: it took longer than allowed"}
        # In the pipeline's threads, which hold the database connections (web/pipeline.py).
        verdict = await self.pipeline.offload(
            functools.partial(
                callbacks.pre_receive, self.pipeline, session.grant, updates, quarantine
            )
        )
        if verdict.refs:
            session.ref_reasons = dict(verdict.refs)
        if verdict.allowed and verdict.scan is not None:
            verdict = await self._protect(session, updates, quarantine, verdict)
        # Checked again: the time may have run out, or git exited, while we checked.
        if verdict.allowed and (not session.open or time.monotonic() > session.deadline):
            return {"ok": False, "message": "push refused: it took longer than allowed"}
        if verdict.allowed and verdict.ctx is not None:
            # Committed before git may move a ref: if this process dies before post-receive
            # records the push, the outbox row still does (`callbacks.recover`).
            pending = await self.pipeline.offload(functools.partial(
                callbacks.note_pending, self.runtime, session.grant, verdict.ctx, updates,
                session.deadline - time.monotonic(),
            ))
            if pending is None:
                return {"ok": False, "message": "push refused: Gitward could not record it; "
                        "try again"}
            session.pending_id = pending
            session.ctx = verdict.ctx
            session.attempted = updates
        return {"ok": verdict.allowed, "message": verdict.message}

    async def _protect(
        self,
        session: PushSession,
        updates: list[RefUpdate],
        quarantine: str | None,
        verdict: Verdict,
    ) -> Verdict:
        """Push protection, once the push is allowed: scan its new objects (git subprocesses,
        in a thread of their own: not one of the pipeline's, which hold database
        connections), then look up whatever could be a secret (docs/push-protection.md)."""
        plan, ctx = verdict.scan, verdict.ctx
        assert plan is not None and ctx is not None
        repository = self.runtime.git.path_of(plan.storage_name)
        prefixes = self.runtime.credentials.leak_prefixes()

        def scan() -> secret_scan.ScanResult:
            where = secret_scan.quarantine_of(repository, quarantine)
            return secret_scan.scan_push(repository, where, [u.new for u in updates], prefixes)

        try:
            scanned = await asyncio.to_thread(scan)
        except secret_scan.ScanFailed as failure:
            log.warning("push protection could not scan a push: %s", failure)
            return await self.pipeline.offload(
                functools.partial(
                    callbacks.refused_unread, self.runtime, session.grant, ctx, updates
                )
            )
        if not scanned.candidates and not (plan.refuse and scanned.too_many):
            return verdict
        return await self.pipeline.offload(
            functools.partial(
                callbacks.judge_secrets, self.runtime, session.grant, ctx, plan, updates, scanned
            )
        )

    async def _post_receive(self, session: PushSession, updates: list[RefUpdate]) -> dict[str, Any]:
        ctx = session.ctx
        if ctx is None:
            # git runs post-receive only after our pre-receive allowed the push.
            return {"ok": False, "message": "warning: this push was not checked by Gitward"}
        session.applied = updates
        # Kept apart from this connection: if the hook is gone, the audit write still lands.
        recorded = asyncio.ensure_future(
            self.pipeline.offload(
                functools.partial(callbacks.post_receive, self.runtime, session.grant, ctx,
                                  updates, session.pending_id)
            )
        )
        self._keep(recorded)
        verdict = await asyncio.shield(recorded)
        return {"ok": verdict.allowed, "message": verdict.message}


def hook_server(app: ASGIApp) -> HookServer:
    """The application's hook server (created, not started, on first use)."""
    state = app.state  # type: ignore[attr-defined]
    server: HookServer | None = getattr(state, "hook_server", None)
    if server is None:
        server = HookServer(state.pipeline)
        state.hook_server = server
    return server


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Listen for the hooks while the application runs (pushes also start it on demand)."""
    server = hook_server(app)
    await server.start()
    try:
        yield
    finally:
        await server.close()
