"""When to record a credential's last use: at most once a minute per credential and process,
so that authenticating is not a database write on every request (and the write itself is
conditional, so it lands at most once a minute whatever the number of processes)."""

from __future__ import annotations

import threading
import time

INTERVAL_SECONDS = 60.0


class LastUseThrottle:
    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def due(self, credential_id: int) -> bool:
        """True (and remembered) when this credential's last use should be written now."""
        tick = time.monotonic()
        last = self._last.get(credential_id)
        if last is not None and tick - last < self.interval:
            return False  # the usual answer, without taking the lock
        with self._lock:
            last = self._last.get(credential_id)
            if last is not None and tick - last < self.interval:
                return False
            self._last[credential_id] = tick
            return True
