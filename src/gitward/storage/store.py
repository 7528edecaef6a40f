"""One unit of work (a SQLAlchemy session) and the queries over it, one object per aggregate.

The session is private to storage/: services and credentials call named query methods
(`store.accounts.user_by_id`, `store.credentials.changed`, `store.repos.repositories_in`,
`store.oauth.code_by_hash`, `store.audit.record`) and never build SQL. No access decisions
here.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from gitward.storage.accounts import Accounts, UserStanding
from gitward.storage.audit import AuditLog
from gitward.storage.credentials import GENERATION, Credentials, Generation
from gitward.storage.generation import ReadCache
from gitward.storage.oauth import OAuth
from gitward.storage.repos import Repos

__all__ = ["GENERATION", "Store", "UserStanding"]


class Store:
    """The queries of one unit of work. Services never commit: the request does."""

    __slots__ = ("_session", "accounts", "audit", "credentials", "deferred", "oauth", "repos")

    def __init__(self, session: Session, reads: ReadCache | None = None) -> None:
        self._session = session
        # One reading of the generation per unit of work, shared by every aggregate.
        generation = Generation(session)
        self.accounts = Accounts(session, generation)
        self.credentials = Credentials(session, generation)
        self.repos = Repos(session, generation, reads if reads is not None else ReadCache())
        self.oauth = OAuth(session)
        self.audit = AuditLog(session)
        #: Best-effort writes to run after this unit of work commits (Runtime.unit_of_work).
        self.deferred: list[Callable[[Store], None]] = []

    def defer(self, write: Callable[[Store], None]) -> None:
        """Run `write` after this unit of work, in a short transaction of its own whose
        failure is logged and dropped: for bookkeeping such as a credential's last use,
        which must never fail (or lock) the request that caused it."""
        self.deferred.append(write)

    def add(self, obj: object) -> None:
        """Make a new row part of this unit of work."""
        self._session.add(obj)

    def delete(self, obj: object) -> None:
        self._session.delete(obj)

    def flush(self) -> None:
        """Send pending changes now (ids, constraint checks) without committing."""
        self._session.flush()
