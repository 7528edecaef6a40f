"""What credentials are used for, noted without a write per request.

Every decision the policy allows to a non-interactive credential (a token, an app password)
is noted here, once per request and action, in memory: a count and the last time, per UTC
day. At most every `interval` seconds a request hands what is pending to a deferred write
(`Store.defer`, after its own transaction, never failing it), which adds it to the
`credential_usage` table; the usage report reads the table and adds what this process has
not written yet, so within one process it is exact, and across worker processes or hosts it
lags by at most the interval (docs/credential-usage.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

DAY = 86_400


@dataclass(frozen=True)
class Noted:
    """Uses of one credential for one action on one day."""

    credential: str
    credential_id: int
    action: str
    day: date
    count: int
    last_used_on: datetime


def _day(day_number: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + day_number)


class UsageLedger:
    """Uses noted in this process and not yet written (thread-safe: units of work run in
    several threads)."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        # (credential, id, action, day number) -> [count, last use as a timestamp]
        self._pending: dict[tuple[str, int, str, int], list[float]] = {}
        self._flushed_at = clock()
        self._pruned_day = -1

    def note(self, credential: str, credential_id: int, action: str) -> bool:
        """Note one use; True when the pending uses are due to be written."""
        now = self.clock()
        key = (credential, credential_id, action, int(now // DAY))
        with self._lock:
            entry = self._pending.get(key)
            if entry is None:
                self._pending[key] = [1, now]
            else:
                entry[0] += 1
                entry[1] = now
            if now - self._flushed_at < self.interval:
                return False
            self._flushed_at = now
            return True

    def drain(self) -> list[Noted]:
        """Everything pending, which the caller now has to write (or `restore`)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return [_noted(key, entry) for key, entry in pending.items()]

    def restore(self, uses: list[Noted]) -> None:
        """Put back uses whose write failed, to be written with the next ones."""
        with self._lock:
            for use in uses:
                day = use.day.toordinal() - date(1970, 1, 1).toordinal()
                key = (use.credential, use.credential_id, use.action, day)
                entry = self._pending.setdefault(key, [0, 0.0])
                entry[0] += use.count
                entry[1] = max(entry[1], use.last_used_on.timestamp())

    def prune_due(self) -> bool:
        """True once a day: time to forget the days no report covers."""
        today = int(self.clock() // DAY)
        with self._lock:
            if today == self._pruned_day:
                return False
            self._pruned_day = today
            return True

    def pending_for(self, credential: str, credential_id: int) -> list[Noted]:
        """What this process noted of one credential and has not written."""
        with self._lock:
            return [
                _noted(key, entry)
                for key, entry in self._pending.items()
                if key[0] == credential and key[1] == credential_id
            ]


def _noted(key: tuple[str, int, str, int], entry: list[float]) -> Noted:
    credential, credential_id, action, day = key
    return Noted(
        credential, credential_id, action, _day(day), int(entry[0]),
        datetime.fromtimestamp(entry[1], UTC),
    )
