"""What every credential kind stored as a keyed hash shares: issuing secrets, hashing them,
a revocation-safe cache of look-ups, and recording the last use without a write per request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from gitward.credentials import codec
from gitward.credentials.cache import CredentialCache
from gitward.credentials.last_use import LastUseThrottle
from gitward.storage.models import utcnow
from gitward.storage.store import Store

C = TypeVar("C")


class StoredSecretKind(Generic[C]):
    """Base of a credential kind whose secrets the database knows only by keyed hash."""

    def __init__(
        self,
        secret_key: bytes,
        cache: CredentialCache[C],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._key = secret_key
        self.cache = cache
        self.clock = clock  # replaceable in tests (expiry to the second)
        self._last_use = LastUseThrottle()

    def cached(self, key: str, current_generation: Callable[[C], int]) -> C | None:
        """The cached look-up for `key` if the generation is unchanged since it was read.

        `current_generation(value)` reads the generation now, in one statement with whatever
        else the kind must read on every request (see credentials/cache.py).
        """
        entry = self.cache.get(key)
        if entry is None:
            return None
        generation, value = entry
        if current_generation(value) != generation:
            self.cache.forget(key)
            return None
        return value

    def remember(self, key: str, generation: int, value: C) -> None:
        self.cache.put(key, generation, value)

    def hash(self, secret: str) -> str:
        return codec.keyed_hash(self._key, secret)

    def issue(self, prefix: str) -> tuple[str, str]:
        """A fresh secret with `prefix`, and the keyed hash to store for it."""
        secret = codec.generate(prefix)
        return secret, self.hash(secret)

    def note_use(
        self,
        store: Store,
        model: Any,
        credential_id: int,
        ip: str | None,
        *,
        column: str = "last_used_on",
    ) -> None:
        """Record the last use (time and address) at most once a minute per credential.

        Each process asks at most once a minute (`LastUseThrottle`), and the UPDATE itself
        only lands when the recorded use is older than that, so however many processes and
        nodes serve a credential, its row is written at most once a minute."""
        if self._last_use.due(credential_id):
            now = self.clock()
            not_since = now - timedelta(seconds=self._last_use.interval)
            # After the request's own transaction, in one of its own: a locked or busy
            # database delays the stamp (or drops it), never the request.
            store.defer(
                lambda later: later.credentials.note_use(
                    model, credential_id, ip, now=now, not_since=not_since, column=column
                )
            )
