"""One database connection per unit-of-work thread, held for its life, for the one statement
every request runs: the access generation (storage/unit.py).

NOTE: checking a connection out of SQLAlchemy's pool and back in cost more than the statement
itself (bench/pipeline.py). These connections come from an engine without a pool, so that
holding them takes nothing from the pool the sessions use; they run in autocommit (SQLite's
statements are atomic on their own, PostgreSQL's never leave a transaction open), and one
that fails is closed and replaced on the thread's next request.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from gitward.storage.database import make_engine


class HeldConnection:
    """A thread's connection: `close()` keeps it, `invalidate()` ends it."""

    def __init__(self, connections: HeldConnections, fairy: Any) -> None:
        self._connections = connections
        # The pool's proxy, kept: dropping it would hand the connection back (and close it).
        self._fairy = fairy

    def cursor(self) -> Any:
        return self._fairy.cursor()

    def close(self) -> None:
        """Kept for the thread's next unit of work."""

    def invalidate(self) -> None:
        self._connections.discard(self)
        with contextlib.suppress(Exception):  # it is being thrown away for having failed
            self._fairy.invalidate()


class HeldConnections:
    """The held connections of one database, one per thread that asks."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = make_engine(url, poolclass=NullPool)
        self._local = threading.local()
        # Weakly: a thread that ends drops its connection, which then closes.
        self._all: weakref.WeakSet[HeldConnection] = weakref.WeakSet()
        self._lock = threading.Lock()

    def __call__(self) -> HeldConnection:
        held: HeldConnection | None = getattr(self._local, "held", None)
        if held is None:
            fairy = self._engine.raw_connection()
            if self._engine.dialect.name == "postgresql":
                driver: Any = fairy.driver_connection
                driver.autocommit = True  # no transaction left open
            held = HeldConnection(self, fairy)
            self._local.held = held
            with self._lock:
                self._all.add(held)
        return held

    def discard(self, held: HeldConnection) -> None:
        if getattr(self._local, "held", None) is held:
            self._local.held = None
        with self._lock:
            self._all.discard(held)

    def close(self) -> None:
        with self._lock:
            held, self._all = list(self._all), weakref.WeakSet()
        for connection in held:
            connection.invalidate()
        self._engine.dispose()
