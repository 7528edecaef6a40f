"""The access generation: one counter that every change to who may do what bumps, in the
same transaction as the change, and the read cache that trusts an entry only while the
counter is unchanged.

NOTE: correctness first, as for credentials (credentials/cache.py, which shares the counter).
Credential changes bump it by hand (`store.credentials.changed()`); changes to the rows that
access is decided from — users, workspaces and their members, projects, repositories and
their grants — bump it by themselves: a flush that adds, changes or deletes such a row, or a
bulk UPDATE or DELETE of such a table, bumps it first (session events below), so no service
can forget to. A cached read (a repository by slug, a user's grants on a target) is then
one comparison with the generation this unit of work read anyway, instead of a statement,
and is re-read on the next request after any change, on every process and node.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from sqlalchemy import Delete, Update, event, insert, update
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from gitward.storage.models import (
    CredentialGeneration,
    Project,
    ProjectGrant,
    Repository,
    RepositoryGrant,
    User,
    Workspace,
    WorkspaceMember,
)

#: Session.info key: the generation was bumped in this session since it was last read.
GENERATION_BUMPED = "gitward_generation_bumped"

#: The models whose rows access is decided from.
ACCESS_MODELS: tuple[type[Any], ...] = (
    User, Workspace, WorkspaceMember, Project, ProjectGrant, Repository, RepositoryGrant,
)
_ACCESS_TABLES = frozenset(model.__table__.name for model in ACCESS_MODELS)

_BUMP = (
    update(CredentialGeneration)
    .where(CredentialGeneration.id == 1)
    .values(value=CredentialGeneration.value + 1)
)

MAX_ENTRIES = 100_000


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What `ReadCache.get` answers when it holds nothing valid (None is a valid cached value).
MISSING: Any = _Missing()


def bump_generation(session: Session) -> None:
    """Bump the generation in the session's transaction."""
    connection = session.connection()
    if connection.execute(_BUMP).rowcount == 0:
        # The row the migration made is gone: start again above every value read so far.
        connection.execute(insert(CredentialGeneration).values(id=1, value=1))
    session.info[GENERATION_BUMPED] = True


class ReadCache:
    """Entries keyed by what was read, each with the generation it was read at."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self._newest = 0

    def get(self, key: Hashable, generation: int) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] != generation:
            return MISSING
        return entry[1]

    def put(self, key: Hashable, generation: int, value: Any) -> None:
        with self._lock:
            if generation > self._newest:
                # Nothing read at an older generation can be trusted again: let it all go.
                self._entries.clear()
                self._newest = generation
            elif generation < self._newest:
                return  # read before a change another unit has already committed
            self._entries[key] = (generation, value)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _changes_access(session: Session) -> bool:
    return any(
        isinstance(obj, ACCESS_MODELS)
        for group in (session.new, session.dirty, session.deleted)
        for obj in group
    )


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if _changes_access(session):
        bump_generation(session)


def _do_orm_execute(state: ORMExecuteState) -> None:
    statement = state.statement
    if isinstance(statement, Update | Delete):
        name: str | None = getattr(statement.table, "name", None)
        if name in _ACCESS_TABLES:
            bump_generation(state.session)


def watch_access_changes(factory: sessionmaker[Session]) -> None:
    """Make every session of `factory` bump the generation on its own (see the module)."""
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "do_orm_execute", _do_orm_execute)
