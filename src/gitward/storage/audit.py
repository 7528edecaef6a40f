"""The audit aggregate: append-only events of who did what to which resource."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select

from gitward.storage.common import Page, Window, like_prefix, scalars_page
from gitward.storage.models import AuditEvent, PendingPush
from gitward.storage.unit import Unit


class AuditLog:
    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def record(
        self,
        action: str,
        *,
        actor: str,
        actor_user_id: int | None = None,
        target: str = "",
        client_ip: str | None = None,
        **details: Any,
    ) -> AuditEvent:
        """Add an event to this unit of work (it lands if the unit of work commits)."""
        event = AuditEvent(
            action=action,
            actor=actor,
            actor_user_id=actor_user_id,
            target=target,
            client_ip=client_ip,
            details=details,
        )
        self._unit.session.add(event)
        return event

    # -- pending pushes: the outbox of push events ---------------------------------------

    def add_pending_push(self, pending: PendingPush) -> int:
        """Write a push's outbox row now, in this unit of work; its id."""
        self._unit.session.add(pending)
        self._unit.session.flush()
        return pending.id

    def take_pending_push(self, pending_id: int) -> PendingPush | None:
        """Delete the outbox row and return what it held, if it is still there: of two units
        of work taking one row, only the first gets it (the other waits for its commit on
        PostgreSQL, or for SQLite's write lock, then finds nothing)."""
        row = self._unit.session.get(PendingPush, pending_id)
        if row is None:
            return None
        deleted = self._unit.session.execute(
            delete(PendingPush).where(PendingPush.id == pending_id)
            .execution_options(synchronize_session=False)
        )
        return row if getattr(deleted, "rowcount", 0) == 1 else None

    def pending_pushes(self, limit: int) -> Sequence[PendingPush]:
        """The oldest outbox rows (the recovery decides which are over)."""
        return self._unit.session.scalars(
            select(PendingPush).order_by(PendingPush.id).limit(limit)
        ).all()

    def events(self) -> Sequence[AuditEvent]:
        """Every event, oldest first."""
        return self._unit.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()

    def event(self, event_id: int) -> AuditEvent | None:
        return self._unit.session.get(AuditEvent, event_id)

    def page(
        self,
        window: Window,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        within: AuditScope | None = None,
        newest_first: bool = False,
    ) -> Page[AuditEvent]:
        """A window of the events matching every filter given, in the order they happened
        (or the reverse); `within`: only those whose target is one of its targets or starts
        with one of its prefixes (a workspace, and what is in it)."""
        conditions: list[ColumnElement[bool]] = []
        if actor is not None:
            conditions.append(AuditEvent.actor == actor)
        if action is not None:
            conditions.append(AuditEvent.action == action)
        if target is not None:
            conditions.append(AuditEvent.target == target)
        if within is not None:
            conditions.append(
                or_(
                    AuditEvent.target.in_(list(within.targets)),
                    *(
                        AuditEvent.target.like(like_prefix(prefix), escape="\\")
                        for prefix in within.prefixes
                    ),
                )
            )
        if since is not None:
            conditions.append(AuditEvent.created_on >= since)
        if until is not None:
            conditions.append(AuditEvent.created_on <= until)
        order = AuditEvent.id.desc() if newest_first else AuditEvent.id
        return scalars_page(
            self._unit.session, select(AuditEvent).where(*conditions).order_by(order), window
        )


@dataclass(frozen=True)
class AuditScope:
    """Targets (exact) and target prefixes that make up one part of the site."""

    targets: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
