"""The audit aggregate: append-only events of who did what to which resource."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from gitward.storage.common import Page, Window, like_prefix, scalars_page
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
