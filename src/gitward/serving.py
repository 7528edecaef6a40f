"""`gitward serve` with several worker processes on one host.

The parent binds the listening socket, runs start-up's one-time work (data dir, migrations,
the first administrator: `cli.prepare`), then forks the workers. Each worker builds its own
runtime (engines, caches, the hooks' socket) and serves the inherited socket, the kernel
handing each new connection to one of them. The parent only supervises: it restarts a worker
that dies, and on SIGTERM or SIGINT stops them all (each finishes its requests first).

Nothing a guarantee rests on lives in one worker's memory alone: revocation and access
changes are seen through the database's generation counter (credentials/cache.py), guessing
counters are in the database or Redis (credentials/throttle.py), single-use codes and ids are
spent by conditional UPDATEs, a credential's last use is a conditional write, and the first
administrator is created before any worker starts. Work that must happen once per site (there
is no background work yet) would be claimed in the database with `SELECT … FOR UPDATE SKIP
LOCKED` by whichever worker of whichever host gets there first, never by a process of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from gitward.config import Settings
from gitward.storage.database import SIDE_CONNECTIONS

log = logging.getLogger("gitward.serving")

#: A worker that dies sooner than this after it started counts as failing to start.
QUICK_EXIT_SECONDS = 10.0
#: Workers failing to start this many times in a row stop the server (a broken setting, not
#: bad luck: restarting them for ever would only fill the log).
MAX_QUICK_EXITS = 5
#: Connections PostgreSQL keeps for other clients (psql, backups, monitoring) when the
#: default number of workers is worked out.
SPARE_CONNECTIONS = 5


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def connections_per_worker(settings: Settings) -> int:
    """A worker's most database connections: its pool (one per unit-of-work thread plus the
    side connections) and one held connection per thread (storage/held.py)."""
    return 2 * settings.db_threads + SIDE_CONNECTIONS


def workers_the_database_allows(settings: Settings) -> int | None:
    """How many workers the database's connection limit leaves room for (PostgreSQL), or
    None where there is no such limit (SQLite)."""
    if settings.is_sqlite:
        return None
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    from gitward.storage.database import make_engine

    engine = make_engine(settings.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            limit = int(connection.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(
                connection.execute(text("SHOW superuser_reserved_connections")).scalar_one()
            )
    finally:
        engine.dispose()
    room = limit - reserved - SPARE_CONNECTIONS
    return max(1, room // connections_per_worker(settings))


def worker_count(settings: Settings) -> int:
    """`--workers`, else one per core, at most what the database allows."""
    if settings.workers is not None:
        allowed = workers_the_database_allows(settings)
        if allowed is not None and settings.workers > allowed:
            log.warning(
                "%d workers may open up to %d database connections, more than the database's "
                "max_connections leaves room for (%d workers); lower --workers or "
                "GITWARD_DB_THREADS, or raise max_connections",
                settings.workers, settings.workers * connections_per_worker(settings), allowed,
            )
        return settings.workers
    allowed = workers_the_database_allows(settings)
    return cores() if allowed is None else min(cores(), allowed)


METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory() -> str:
    """A fresh private directory for the workers' metric files (web/metrics.py), named in
    the environment before the metrics library is first imported, as it requires. Local to
    the host (never the shared data directory: each host counts its own)."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="gitward-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = directory
    return directory


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Stop(Exception):
    """A worker was told to stop outside uvicorn's own handling: while it was still starting,
    or once uvicorn has finished (its shutdown re-raises the signal it stopped for)."""


_told_to_stop = threading.Event()


def _stop_worker(_signum: int, _frame: FrameType | None) -> None:
    _told_to_stop.set()
    raise _Stop


class Supervisor:
    """Runs `count` forked workers, each calling `serve()` (its exit status), until told to
    stop; a worker that dies is replaced."""

    def __init__(self, count: int, serve: Callable[[], int]) -> None:
        self.count = count
        self.serve = serve
        self.children: dict[int, float] = {}  # pid -> when it started
        self.stopping = False
        self._quick_exits = 0
        self._parent_alive_r, self._parent_alive_w = os.pipe()

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._stop) for sig in _STOP_SIGNALS}
        try:
            for _ in range(self.count):
                self._spawn()
            return self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._parent_alive_w)
            os.close(self._parent_alive_r)

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("stopping %d workers", len(self.children))
        self.stopping = True
        for pid in list(self.children):
            # A second SIGTERM to a worker is harmless (uvicorn forces an exit on a second
            # SIGINT only), so one the service manager sent it as well does no harm.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _watch(self) -> int:
        status = 0
        while self.children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            started = self.children.pop(pid, None)
            if started is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if self.stopping:
                continue
            lived = time.monotonic() - started
            log.error("worker %d exited (%s) after %.0f s; starting another", pid,
                      f"status {code}" if code >= 0 else f"signal {-code}", lived)
            self._quick_exits = self._quick_exits + 1 if lived < QUICK_EXIT_SECONDS else 0
            if self._quick_exits >= MAX_QUICK_EXITS:
                log.error("workers keep failing at start; stopping")
                status = 1
                self._stop(signal.SIGTERM, None)
                continue
            self._spawn()
        return status

    def _spawn(self) -> None:
        # Held back across the fork, so that the new worker never runs the parent's handler.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            self.children[pid] = time.monotonic()
            if self.stopping:  # told to stop while the workers were being started
                os.kill(pid, signal.SIGTERM)
            return
        # The worker.
        code = 1
        try:
            os.close(self._parent_alive_w)
            for sig in _STOP_SIGNALS:
                signal.signal(sig, _stop_worker)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            threading.Thread(
                target=self._exit_with_parent, name="gitward-parent-watch", daemon=True
            ).start()
            code = self.serve()
        except _Stop:
            code = 0
        except BaseException:
            # The stop can land inside code that wraps what it raises (logging's own set-up
            # turns it into a ValueError): being told to stop is still a clean stop.
            if _told_to_stop.is_set():
                code = 0
            else:
                log.exception("worker %d failed", os.getpid())
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _exit_with_parent(self) -> None:
        """In a worker: when the parent is gone (even killed outright), stop as if told to.
        The parent never writes to the pipe; its end closes only when it exits."""
        try:
            os.read(self._parent_alive_r, 1)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
