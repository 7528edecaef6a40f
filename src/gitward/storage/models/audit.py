"""The audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from gitward.storage.models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created_on", "created_on"),
        # What one owner is told about (credential.leak.revoke on user:<name>), migration 0013.
        Index("ix_audit_events_target_action", "target", "action"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    # Who did it: "user:<username>", "token:<kind>:<id>" or "anonymous".
    actor: Mapped[str] = mapped_column(String(255))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target: Mapped[str] = mapped_column(String(255), default="")
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class PendingPush(Base):
    """A push that pre-receive allowed and whose audit event is not written yet: the outbox
    that lets no push go unrecorded if the server dies while git moves the refs (written
    before git may move them, deleted with the event; services/pushes.py `recover`)."""

    __tablename__ = "pending_pushes"
    __table_args__ = (
        Index("ix_pending_pushes_deadline", "deadline"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE")
    )
    # Who pushed, as the audit event will say it.
    actor: Mapped[str] = mapped_column(String(255))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    credential: Mapped[str] = mapped_column(String(32))
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The (old, new, ref) updates allowed.
    updates: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    # The process that runs the push ("host:pid"), and when the push is over at the latest
    # (its time limit): after that, or once that process is gone, anyone may recover it.
    runner: Mapped[str] = mapped_column(String(255))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
