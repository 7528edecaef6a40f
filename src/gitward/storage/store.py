"""One unit of work (a SQLAlchemy session) and the queries over it, one object per aggregate.

The session is private to storage/: services and credentials call named query methods
(`store.accounts.user_by_id`, `store.credentials.changed`, `store.repos.repositories_in`,
`store.oauth.code_by_hash`, `store.audit.record`) and never build SQL. No access decisions
here. The unit of work itself (its session opened on first use, the generation it read, the
read cache) is storage/unit.py.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from gitward.credentials.usage import UsageLedger
from gitward.storage.accounts import Accounts, UserStanding
from gitward.storage.audit import AuditLog
from gitward.storage.build_statuses import BuildStatuses
from gitward.storage.credentials import Credentials
from gitward.storage.generation import ReadCache
from gitward.storage.notices import Notices
from gitward.storage.oauth import OAuth
from gitward.storage.oidc import Oidc
from gitward.storage.pull_requests import PullRequests
from gitward.storage.repos import Repos
from gitward.storage.unit import GENERATION, Unit
from gitward.storage.usage import Usage
from gitward.storage.webhooks import Webhooks

__all__ = ["GENERATION", "Store", "UserStanding"]

T = TypeVar("T")


class Store:
    """The queries of one unit of work. Services never commit: the request does."""

    __slots__ = (
        "_unit",
        "accounts",
        "audit",
        "build_statuses",
        "credentials",
        "deferred",
        "emitted",
        "ledger",
        "notices",
        "oauth",
        "oidc",
        "pull_requests",
        "repos",
        "usage",
        "webhooks",
    )

    def __init__(
        self,
        session: Session | Callable[[], Session],
        reads: ReadCache | None = None,
        raw: Callable[[], Any] | None = None,
        ledger: UsageLedger | None = None,
    ) -> None:
        unit = self._unit = Unit(session, reads, raw)
        self.accounts = Accounts(unit)
        self.credentials = Credentials(unit)
        self.repos = Repos(unit)
        self.oauth = OAuth(unit)
        self.audit = AuditLog(unit)
        self.build_statuses = BuildStatuses(unit)
        self.usage = Usage(unit)
        self.notices = Notices(unit)
        self.oidc = Oidc(unit)
        #: Where this process notes what credentials are used for (None: not noted).
        self.ledger = ledger
        self.webhooks = Webhooks(unit)
        #: Whether this unit wrote webhook deliveries: once it commits, the runtime wakes
        #: this process's delivery worker (services/events.py).
        self.emitted = False
        self.pull_requests = PullRequests(unit)
        #: Best-effort writes to run after this unit of work commits (Runtime.unit_of_work).
        self.deferred: list[Callable[[Store], None]] = []

    # -- the unit of work, for its owner (Runtime.unit_of_work) ---------------------------

    def open(self) -> Session:
        """The unit's session, opened now if it was not yet (for the runtime that commits
        it; services call the aggregates' queries instead)."""
        return self._unit.session

    @property
    def opened(self) -> Session | None:
        """The session if the unit opened one (else nothing needs committing)."""
        return self._unit.opened

    def release_raw(self) -> None:
        """Hand the bare connection the generation was read on back to the pool."""
        self._unit.release_raw()

    def defer(self, write: Callable[[Store], None]) -> None:
        """Run `write` after this unit of work, in a short transaction of its own whose
        failure is logged and dropped: for bookkeeping such as a credential's last use,
        which must never fail (or lock) the request that caused it."""
        self.deferred.append(write)

    def remembered(self, key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """`compute()`, or what it gave under the same key while the generation is unchanged:
        for results derived only from access rows and credentials (which bump it)."""
        return self._unit.cached(("derived", *key), compute)

    # -- changes -----------------------------------------------------------------------------

    def add(self, obj: object) -> None:
        """Make a new row part of this unit of work."""
        self._unit.session.add(obj)

    def delete(self, obj: object) -> None:
        self._unit.session.delete(obj)

    def flush(self) -> None:
        """Send pending changes now (ids, constraint checks) without committing."""
        self._unit.session.flush()
