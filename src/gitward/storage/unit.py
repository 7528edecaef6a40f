"""What every aggregate of one unit of work shares: its session (opened on first use), the
access generation as the unit last read it, and the process's read cache."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gitward.storage.generation import GENERATION_BUMPED, MISSING, ReadCache, bump_generation
from gitward.storage.models import CredentialGeneration

T = TypeVar("T")

#: The credential generation (credentials/cache.py), to embed in a statement that reads what
#: it must read anyway, so that both come from one consistent snapshot.
GENERATION = func.coalesce(
    select(CredentialGeneration.value).where(CredentialGeneration.id == 1).scalar_subquery(), 0
)
_READ_GENERATION = select(GENERATION)
#: The same, as SQL that SQLite and PostgreSQL both run as it is (no parameters).
_RAW_GENERATION = "SELECT coalesce((SELECT value FROM credential_generation WHERE id = 1), 0)"


class Unit:
    """The session opens on first use: a request answered from the read cache needs only the
    generation, which is read on a bare DBAPI connection (`raw`: the one its thread holds,
    storage/held.py) for a tenth of what the same statement costs through a session
    (bench/README.md). It is only used by units that do not write, which on SQLite run
    without a transaction and on PostgreSQL read committed (the held connection is in
    autocommit), so the generation read on it comes before anything the session reads, as
    the read cache requires (storage/generation.py).
    """

    __slots__ = (
        "_changed", "_connect_raw", "_open", "_raw", "_session", "generation_value", "reads",
    )

    def __init__(
        self,
        session: Session | Callable[[], Session],
        reads: ReadCache | None = None,
        raw: Callable[[], Any] | None = None,
    ) -> None:
        if isinstance(session, Session):
            self._session: Session | None = session
            self._open: Callable[[], Session] | None = None
        else:
            self._session, self._open = None, session
        self._connect_raw = raw
        self._raw: Any = None
        self.reads = reads if reads is not None else ReadCache()
        #: The generation as this unit last read it (None: not yet, or changed since).
        self.generation_value: int | None = None
        #: This unit bumped the generation: what it reads from then on is uncommitted.
        self._changed = False

    @property
    def session(self) -> Session:
        """The unit's session, opened on first use."""
        if self._session is None:
            assert self._open is not None
            self.release_raw()
            self._session = self._open()
        return self._session

    @property
    def opened(self) -> Session | None:
        """The session if the unit opened one (else nothing needs committing)."""
        return self._session

    def release_raw(self) -> None:
        """Hand the bare connection back to the pool (it only ever read)."""
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()

    def _raw_generation(self) -> int | None:
        """The generation read on the bare connection; None if that connection failed (it is
        discarded, and the caller reads through the session, where SQLAlchemy notices a lost
        server and renews the whole pool)."""
        assert self._connect_raw is not None
        if self._raw is None:
            self._raw = self._connect_raw()
        try:
            cursor = self._raw.cursor()
            try:
                cursor.execute(_RAW_GENERATION)
                return int(cursor.fetchone()[0])
            finally:
                cursor.close()
        except Exception:
            raw, self._raw = self._raw, None
            raw.invalidate()
            return None

    def generation(self) -> int:
        """The generation now (once per unit of work: a change made in it resets it)."""
        session = self._session
        if session is not None and session.info.pop(GENERATION_BUMPED, None):
            self.generation_value = None
            self._changed = True
        if self.generation_value is None:
            if session is None and self._connect_raw is not None:
                self.generation_value = self._raw_generation()
            if self.generation_value is None:
                self.generation_value = int(
                    self.session.connection().execute(_READ_GENERATION).scalar_one()
                )
        return self.generation_value

    def bump(self) -> None:
        bump_generation(self.session)
        self.generation_value = None
        self._changed = True

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, or what it gave under the same key while the generation is unchanged
        (for reads derived only from access rows and credentials, which bump it).

        NOTE: once this unit has changed access rows, the generation it reads is its own
        uncommitted one: what it reads then is neither taken from the shared cache nor put
        in it, or a change rolled back later would be served as current once another commit
        brought the counter to the same value."""
        generation = self.generation()
        if self._changed:
            return compute()
        hit = self.reads.get(key, generation)
        if hit is MISSING:
            hit = compute()
            self.reads.put(key, generation, hit)
        return cast(T, hit)
