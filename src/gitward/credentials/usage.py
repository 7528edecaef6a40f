"""What credentials are used for, noted without a write per request.

Every decision the policy allows to a non-interactive credential (a token, an app password)
is noted here, once per request and action, in memory: a count and the last time. At most
every `interval` seconds a request hands what is pending to a deferred write (`Store.defer`,
after its own transaction, never failing it), which adds it to the `credential_usage` table
under the UTC day it is written (uses within seconds of midnight may land on the next day);
the usage report reads the table and adds what this process has not written yet, so within
one process it is exact, and across worker processes or hosts it lags by at most the
interval (docs/credential-usage.md).

NOTE: the request's side takes no lock: a use advances an `itertools.count` (one C call,
atomic under the GIL, as the metrics' success counters) and stores its time; the writer reads
how far each counter advanced from its repr and subtracts what it wrote before. Only the
first use of a (credential, action) in a process, and the writer, take the lock.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

DAY = 86_400

#: (credential kind, credential id, action)
Key = tuple[str, int, str]


@dataclass(frozen=True)
class Noted:
    """Uses of one credential for one action on one day."""

    credential: str
    credential_id: int
    action: str
    day: date
    count: int
    last_used_on: datetime


def _advanced(counter: itertools.count[int]) -> int:
    """How many times `counter` was advanced (its repr, `count(12)`, shows its next value)."""
    return int(repr(counter)[6:-1])


class UsageLedger:
    """Uses noted in this process and not yet written."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._counters: dict[Key, itertools.count[int]] = {}
        self._last: dict[Key, float] = {}
        # How far each counter had advanced when it was last written (or put back).
        self._written: dict[Key, int] = {}
        # Uses put back after a failed write, to be written with the next ones.
        self._restored: dict[Key, int] = {}
        self._flushed_at = clock()
        self._pruned_day = -1

    def note(self, key: Key) -> bool:
        """Note one use; True when the pending uses are due to be written."""
        counter = self._counters.get(key)
        if counter is None:
            with self._lock:
                counter = self._counters.setdefault(key, itertools.count())
        next(counter)
        now = self._last[key] = self.clock()
        return now - self._flushed_at >= self.interval and self._due(now)

    def _due(self, now: float) -> bool:
        with self._lock:
            if now - self._flushed_at < self.interval:
                return False  # another thread took this round
            self._flushed_at = now
            return True

    def _take(self, keys: list[Key] | None = None) -> list[Noted]:
        """What is pending (of `keys`, or of all), now counted as written."""
        today = _day_of(self.clock())
        taken = []
        with self._lock:
            for key in keys if keys is not None else list(self._counters):
                counter = self._counters.get(key)
                if counter is None:
                    continue
                total = _advanced(counter)
                count = total - self._written.get(key, 0) + self._restored.pop(key, 0)
                self._written[key] = total
                if count > 0:
                    taken.append(Noted(*key, today, count,
                                       datetime.fromtimestamp(self._last[key], UTC)))
        return taken

    def drain(self) -> list[Noted]:
        """Everything pending, which the caller now has to write (or `restore`)."""
        return self._take()

    def restore(self, uses: list[Noted]) -> None:
        """Put back uses whose write failed, to be written with the next ones."""
        with self._lock:
            for use in uses:
                key = (use.credential, use.credential_id, use.action)
                self._restored[key] = self._restored.get(key, 0) + use.count
                if key not in self._counters:
                    self._counters[key] = itertools.count()
                    self._last[key] = use.last_used_on.timestamp()

    def prune_due(self) -> bool:
        """True once a day: time to forget the days no report covers."""
        today = int(self.clock() // DAY)
        with self._lock:
            if today == self._pruned_day:
                return False
            self._pruned_day = today
            return True

    def pending_for(self, credential: str, credential_id: int) -> list[Noted]:
        """What this process noted of one credential and has not written (left pending)."""
        today = _day_of(self.clock())
        found = []
        with self._lock:
            for key, counter in self._counters.items():
                if key[0] != credential or key[1] != credential_id:
                    continue
                count = (_advanced(counter) - self._written.get(key, 0)
                         + self._restored.get(key, 0))
                if count > 0:
                    found.append(Noted(*key, today, count,
                                       datetime.fromtimestamp(self._last[key], UTC)))
        return found


def _day_of(moment: float) -> date:
    return datetime.fromtimestamp(moment, UTC).date()
