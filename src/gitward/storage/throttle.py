"""Queries of the guessing-protection counters: attempts at an account password, counted
per key (an account, an address, or the two together) in fixed windows.

NOTE: these run outside any unit of work, each in a short transaction of its own on the
engine, because an attempt must be counted BEFORE the password is verified and must stay
counted when the request then fails and rolls back. On PostgreSQL the counters are a table of
the database (`rate_limit_counters`, row locks make each step atomic across processes and
hosts). On SQLite they are the same table in a file of their own next to the database
(`DATA/throttle.db`): a request that writes holds the database's one write lock for its
whole unit of work, so counting in the database itself from inside that unit would wait for
its own lock. SQLite serves one host, so a file all its worker processes open is shared by
every process that serves the site.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gitward.storage.common import like_prefix
from gitward.storage.database import WRITE, make_engine
from gitward.storage.models import RateLimitCounter, utcnow

_TABLE: Table = RateLimitCounter.__table__  # type: ignore[assignment]
_c = _TABLE.c


@dataclass(frozen=True)
class CounterState:
    """One counter as it stands: attempts in the current window and seconds left of it."""

    count: int
    retry_after: int


class SqlCounters:
    """Attempt counters in SQL. Every method is one short transaction of its own."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self.clock = clock
        self._insert: Any = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )

    @classmethod
    def sqlite_file(cls, path: Path, clock: Callable[[], datetime] = utcnow) -> SqlCounters:
        """Counters in a SQLite file of their own (see the module), created on first use.

        The file holds nothing but counters that expire within a window: it is not part of
        the schema Alembic manages, and losing it loses only recent failed attempts."""
        engine = make_engine(f"sqlite:///{path}", pool_size=4)
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            _TABLE.create(conn, checkfirst=True)
        return cls(engine, clock)

    def _writing(self) -> Any:
        # On SQLite the transaction takes the write lock up front (BEGIN IMMEDIATE), where
        # the busy timeout makes a concurrent attempt wait instead of failing.
        return self._engine.connect().execution_options(**{WRITE: True})

    def reserve(self, limits: Sequence[tuple[str, int]], window: int) -> int | None:
        """Count one attempt on every key, all or none: None if each key was under its
        limit (all are counted now), else the seconds until the first full key's window
        ends (none is counted). One transaction, so no two attempts take the last place."""
        now = self.clock()
        cutoff = now - timedelta(seconds=window)
        expired = _c.window_start < cutoff
        with self._writing() as conn, conn.begin() as transaction:
            for key, limit in limits:
                stmt = self._insert(_TABLE).values(key=key, window_start=now, count=1)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[_c.key],
                    set_={
                        "count": case((expired, 1), else_=_c.count + 1),
                        "window_start": case((expired, now), else_=_c.window_start),
                    },
                    where=or_(expired, _c.count < limit),
                ).returning(_c.count)
                if conn.execute(stmt).first() is None:
                    start = conn.execute(select(_c.window_start).where(_c.key == key)).scalar_one()
                    transaction.rollback()
                    return _seconds_left(start, now, window)
        return None

    def release(self, keys: Sequence[str]) -> None:
        """Take back one attempt on every key (it turned out not to be a guess)."""
        with self._writing() as conn, conn.begin():
            conn.execute(
                update(_TABLE)
                .where(_c.key.in_(list(keys)), _c.count > 0)
                .values(count=_c.count - 1)
            )

    def clear(self, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int:
        """Forget the counters named, and those whose key starts with one of `prefixes`."""
        conditions = [_c.key.in_(list(keys))] if keys else []
        conditions += [_c.key.like(like_prefix(p), escape="\\") for p in prefixes]
        if not conditions:
            return 0
        with self._writing() as conn, conn.begin():
            result = conn.execute(delete(_TABLE).where(or_(*conditions)))
        return int(result.rowcount)

    def state(self, keys: Sequence[str], window: int) -> dict[str, CounterState]:
        """The live counters among `keys` (expired windows are left out)."""
        now = self.clock()
        cutoff = now - timedelta(seconds=window)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_c.key, _c.window_start, _c.count).where(
                    _c.key.in_(list(keys)), _c.window_start >= cutoff
                )
            ).all()
        return {
            key: CounterState(int(count), _seconds_left(start, now, window))
            for key, start, count in rows
        }

    def close(self) -> None:
        self._engine.dispose()


def _seconds_left(start: datetime, now: datetime, window: int) -> int:
    if start.tzinfo is None:
        start = start.replace(tzinfo=now.tzinfo)
    return max(int((start + timedelta(seconds=window) - now).total_seconds()) + 1, 1)
