"""What every credential kind stored as a keyed hash shares: issuing secrets, hashing them,
a revocation-safe cache of look-ups, and recording the last use without a write per request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from gitward.credentials import codec
from gitward.credentials.cache import CredentialCache
from gitward.credentials.last_use import LastUseThrottle
from gitward.credentials.registry import AuthenticationFailed
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
        self._keyed_hash = codec.KeyedHash(secret_key)
        self.cache = cache
        self.clock = clock  # replaceable in tests (expiry to the second)
        self._last_use = LastUseThrottle()

    def look_up(self, secret: str, generation: int) -> tuple[str, C | None]:
        """The keyed hash of `secret`, and what is cached for it if that was read at
        `generation` — the generation this unit of work read before anything else it reads
        (`store.credentials.generation()`); None: read it from the database.

        NOTE: a kind caches what the next request with the same secret needs, down to the
        AuthContext it answers, and remembers it under the generation read *before* the
        statements it came from: an entry is served only while the generation is still that
        one, so nothing it holds (the token row, its owner's standing) can have changed since
        it was read (see credentials/cache.py). A secret that is cached was well formed (the
        database knew it); any other has its checksum checked here, so that a typo or a
        truncated paste never reaches the database.
        """
        key = self._keyed_hash(secret)  # self.hash, without a call on the hot path
        entry = self.cache.get(key)
        if entry is not None:
            if entry[0] == generation:
                return key, entry[1]
            self.cache.forget(key)
        if codec.prefix_of(secret) is None:
            raise AuthenticationFailed("Invalid token", audit_subject="malformed-token")
        return key, None

    def remember(self, key: str, generation: int, value: C) -> None:
        self.cache.put(key, generation, value)

    def hash(self, secret: str) -> str:
        return self._keyed_hash(secret)

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
