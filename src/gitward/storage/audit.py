"""The audit aggregate: append-only events of who did what to which resource."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gitward.storage.models import AuditEvent


class AuditLog:
    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

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
        self._session.add(event)
        return event

    def events(self) -> Sequence[AuditEvent]:
        """Every event, oldest first."""
        return self._session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
