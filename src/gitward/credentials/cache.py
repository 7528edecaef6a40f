"""A cache of credential look-ups that never outlives a revocation, on any process or node.

NOTE: correctness first. The database holds one counter, the *credential generation*
(table `credential_generation`), which every change that can end or narrow a credential bumps
in the same transaction as the change itself (revoke, modify, rotate, deleting a user or the
resource a token belongs to). A cached look-up remembers the generation read in the same SQL
statement as the row it came from; a later request trusts the entry only if the generation it
reads now (again in one statement, together with what it must read anyway, such as the owner's
standing) is unchanged. So a revoked credential is refused on the very next request, whichever
process or node serves it, with no Redis, no messages and no time-to-live involved, and a
cached request costs one small query instead of the credential's own look-up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_ENTRIES = 100_000


class CredentialCache(Generic[V]):
    """Entries keyed by a credential's keyed hash, each with the generation it was read at."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, tuple[int, V]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[int, V] | None:
        return self._entries.get(key)

    def put(self, key: str, generation: int, value: V) -> None:
        with self._lock:
            self._entries[key] = (generation, value)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
