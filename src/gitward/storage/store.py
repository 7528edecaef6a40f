"""One unit of work (a SQLAlchemy session) and the queries over it, one object per aggregate.

The session is private to storage/: services and credentials call named query methods
(`store.accounts.user_by_id`, `store.credentials.changed`, `store.repos.repositories_in`,
`store.oauth.code_by_hash`, `store.audit.record`) and never build SQL. No access decisions
here.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gitward.storage.accounts import Accounts, UserStanding
from gitward.storage.audit import AuditLog
from gitward.storage.credentials import GENERATION, Credentials
from gitward.storage.oauth import OAuth
from gitward.storage.repos import Repos

__all__ = ["GENERATION", "Store", "UserStanding"]


class Store:
    """The queries of one unit of work. Services never commit: the request does."""

    __slots__ = ("_session", "accounts", "audit", "credentials", "oauth", "repos")

    def __init__(self, session: Session) -> None:
        self._session = session
        self.accounts = Accounts(session)
        self.credentials = Credentials(session)
        self.repos = Repos(session)
        self.oauth = OAuth(session)
        self.audit = AuditLog(session)

    def add(self, obj: object) -> None:
        """Make a new row part of this unit of work."""
        self._session.add(obj)

    def delete(self, obj: object) -> None:
        self._session.delete(obj)

    def flush(self) -> None:
        """Send pending changes now (ids, constraint checks) without committing."""
        self._session.flush()
