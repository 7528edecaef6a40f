"""The audit aggregate: append-only events of who did what to which resource."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gitward.storage.models import AuditEvent
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

    def events(self) -> Sequence[AuditEvent]:
        """Every event, oldest first."""
        return self._unit.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()

    def events_on(
        self, target: str, action: str, since: datetime, limit: int
    ) -> Sequence[AuditEvent]:
        """The newest events of one action on one target since `since` (indexed)."""
        return self._unit.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target == target, AuditEvent.action == action,
                   AuditEvent.created_on >= since)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        ).all()
