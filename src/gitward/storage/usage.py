"""Queries of credential usage (credentials/usage.py notes it, services/credential_usage.py
reports it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from gitward.credentials.usage import Noted
from gitward.storage.models import CredentialUse
from gitward.storage.unit import Unit

_TABLE: Table = CredentialUse.__table__  # type: ignore[assignment]


class Usage:
    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def add(self, uses: Sequence[Noted]) -> None:
        """Add counts (creating the day's row, or adding to it: each process adds what it
        noted, so none overwrites another's)."""
        if not uses:
            return
        session = self._unit.session
        insert: Any = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        for use in uses:
            statement = insert(_TABLE).values(
                credential=use.credential,
                credential_id=use.credential_id,
                action=use.action,
                day=use.day,
                count=use.count,
                last_used_on=use.last_used_on,
            )
            excluded = statement.excluded
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["credential", "credential_id", "action", "day"],
                    set_={
                        "count": _TABLE.c["count"] + excluded["count"],
                        "last_used_on": func.max(
                            _TABLE.c.last_used_on, excluded.last_used_on
                        ) if session.get_bind().dialect.name == "sqlite" else func.greatest(
                            _TABLE.c.last_used_on, excluded.last_used_on
                        ),
                    },
                )
            )

    def of(self, credential: str, credential_id: int, since: date) -> Sequence[CredentialUse]:
        return self._unit.session.scalars(
            select(CredentialUse).where(
                CredentialUse.credential == credential,
                CredentialUse.credential_id == credential_id,
                CredentialUse.day >= since,
            )
        ).all()

    def prune(self, before: date) -> None:
        """Forget the days the report no longer covers."""
        self._unit.session.execute(delete(CredentialUse).where(CredentialUse.day < before))
