"""Guessing protection for account passwords: failed attempts counted per account and per
client address in fixed windows, shared by every worker process.

Counters live in Redis when `GITWARD_REDIS_URL` is set, otherwise in the database table
`rate_limit_counters`, written in their own short transaction (the failing request itself
rolls back). Only password attempts are counted and limited: tokens and app passwords of the
same user keep working while the password is locked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, case, select
from sqlalchemy.dialects import postgresql, sqlite

from gitward.storage.models import RateLimitCounter, utcnow

DEFAULT_LIMIT = 10
DEFAULT_WINDOW_SECONDS = 600


@dataclass(frozen=True)
class Blocked:
    retry_after: int


class CounterStore(Protocol):
    def blocked(self, keys: list[str], limit: int, window: int) -> Blocked | None: ...

    def fail(self, keys: list[str], window: int) -> None: ...


class SqlCounters:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self.clock = clock

    def blocked(self, keys: list[str], limit: int, window: int) -> Blocked | None:
        now = self.clock()
        cutoff = now - timedelta(seconds=window)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(RateLimitCounter.window_start, RateLimitCounter.count).where(
                    RateLimitCounter.key.in_(keys)
                )
            ).all()
        waits = [
            int((start + timedelta(seconds=window) - now).total_seconds()) + 1
            for start, count in rows
            if _aware(start) > cutoff and count >= limit
        ]
        return Blocked(max(waits)) if waits else None

    def fail(self, keys: list[str], window: int) -> None:
        now = self.clock()
        cutoff = now - timedelta(seconds=window)
        dialect = self._engine.dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = RateLimitCounter.__table__
        with self._engine.begin() as conn:
            for key in keys:
                stmt = insert(table).values(key=key, window_start=now, count=1)
                expired = table.c.window_start < cutoff
                stmt = stmt.on_conflict_do_update(
                    index_elements=[table.c.key],
                    set_={
                        "count": case((expired, 1), else_=table.c.count + 1),
                        "window_start": case((expired, now), else_=table.c.window_start),
                    },
                )
                conn.execute(stmt)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RedisCounters:
    PREFIX = "gitward:auth-failures:"

    def __init__(self, client: Any) -> None:
        self._client = client

    def blocked(self, keys: list[str], limit: int, window: int) -> Blocked | None:
        names = [self.PREFIX + k for k in keys]
        pipe = self._client.pipeline()
        for name in names:
            pipe.get(name)
            pipe.ttl(name)
        values = pipe.execute()
        waits = []
        for i in range(0, len(values), 2):
            count, ttl = values[i], values[i + 1]
            if count is not None and int(count) >= limit:
                waits.append(max(int(ttl), 1))
        return Blocked(max(waits)) if waits else None

    def fail(self, keys: list[str], window: int) -> None:
        pipe = self._client.pipeline()
        for key in keys:
            name = self.PREFIX + key
            pipe.incr(name)
            pipe.expire(name, window, nx=True)
        pipe.execute()


class PasswordGuard:
    """Refuses password attempts for an account or address with too many recent failures."""

    def __init__(
        self,
        counters: CounterStore,
        limit: int = DEFAULT_LIMIT,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self.counters = counters
        self.limit = limit
        self.window = window_seconds

    @staticmethod
    def keys(username: str, client_ip: str | None) -> list[str]:
        keys = [f"user:{username.lower()[:200]}"]
        if client_ip:
            keys.append(f"ip:{client_ip[:64]}")
        return keys

    def check(self, username: str, client_ip: str | None) -> Blocked | None:
        return self.counters.blocked(self.keys(username, client_ip), self.limit, self.window)

    def failed(self, username: str, client_ip: str | None) -> None:
        self.counters.fail(self.keys(username, client_ip), self.window)
