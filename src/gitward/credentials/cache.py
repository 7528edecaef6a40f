"""A cache of credential look-ups that never outlives a revocation, on any process.

NOTE: correctness first. An entry remembers the *generation* that was current before the
database was read; every credential change (revoke, modify, rotate) bumps the generation after
its transaction commits. An entry whose generation is not the current one is ignored, so a
revoked credential is refused on the very next request, whichever process serves it:

- one process (the default `gitward serve`, SQLite): the generation is a counter in memory;
- several processes or nodes: the generation lives in Redis (`GITWARD_REDIS_URL`), read once
  per look-up (one GET on loopback) and bumped with INCR;
- several processes without Redis (PostgreSQL and no Redis configured): no cache at all; every
  look-up is one indexed query by hash.

Reading the generation before the database and bumping it after the commit closes the race
where a look-up reads a row that a concurrent revocation is about to delete.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

V = TypeVar("V")

MAX_ENTRIES = 100_000
#: A backstop only: should a generation bump ever be lost (Redis unreachable from the node
#: that revoked), no entry outlives this many seconds.
MAX_AGE_SECONDS = 60.0


class Generation(Protocol):
    def current(self) -> int | None:
        """The current generation, or None when caching must be skipped."""
        ...

    def bump(self) -> None: ...


class LocalGeneration:
    """The generation for a single server process."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def current(self) -> int:
        return self._value

    def bump(self) -> None:
        with self._lock:
            self._value += 1


class NoGeneration:
    """Caching off: every look-up goes to the database."""

    def current(self) -> None:
        return None

    def bump(self) -> None:
        pass


class RedisGeneration:
    """The generation shared by every process and node through Redis."""

    KEY = "gitward:credentials:generation"

    def __init__(self, client: RedisLike) -> None:
        self._client = client

    def current(self) -> int | None:
        try:
            raw = self._client.get(self.KEY)
        except Exception:
            return None
        return int(raw) if raw is not None else 0

    def bump(self) -> None:
        self._client.incr(self.KEY)


class RedisLike(Protocol):
    def get(self, name: str) -> bytes | str | None: ...

    def incr(self, name: str) -> int: ...


class CredentialCache(Generic[V]):
    """Entries keyed by a credential's keyed hash, valid for one generation."""

    def __init__(self, generation: Generation, max_entries: int = MAX_ENTRIES) -> None:
        self.generation = generation
        self._entries: OrderedDict[str, tuple[int, float, V]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def lookup(self, key: str, load: Callable[[], V | None]) -> V | None:
        """The cached value for `key` if still valid, else `load()` (cached if found)."""
        generation = self.generation.current()
        if generation is None:
            return load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] == generation and now - entry[1] < MAX_AGE_SECONDS:
            return entry[2]
        value = load()
        if value is not None:
            with self._lock:
                self._entries[key] = (generation, now, value)
                if len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        else:
            self._entries.pop(key, None)
        return value

    def invalidate(self) -> None:
        """Call after the transaction that changed a credential has committed."""
        with self._lock:
            self._entries.clear()
        self.generation.bump()
