"""Webhooks: hooks on a repository, a workspace (Cloud) or a project (Server), and the outbox
of their deliveries with every attempt (docs/webhooks.md).

A delivery is written in the unit of work of the change that caused it (services/events.py)
and taken from there by the delivery worker (worker/webhooks.py), which claims it for a while
(`claimed_by`, `claimed_until`), posts it, and records the attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow


class Webhook(Base):
    __tablename__ = "webhooks"
    __table_args__ = (
        Index("ix_webhooks_repository_id", "repository_id"),
        Index("ix_webhooks_workspace_id", "workspace_id"),
        Index("ix_webhooks_project_id", "project_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    # The API that created it ("cloud" or "server"): it decides the event names and the body
    # format of what the hook receives, and which API lists it.
    surface: Mapped[str] = mapped_column(String(8))
    # Exactly one of the three is set: what the hook is on.
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), nullable=True
    )
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    url: Mapped[str] = mapped_column(Text)
    # Cloud's `description`, Server's `name`.
    description: Mapped[str] = mapped_column(Text, default="")
    events: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Sealed with the server secret (credentials/sealing.py); never shown.
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to post to one hook: pending, delivering (claimed), delivered or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The worker's look-up of due deliveries, and the order within each hook.
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_hook", "hook_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The request's uuid (X-Request-UUID / X-Request-Id).
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    hook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(64))
    # The JSON body, rendered once when the event happened: posted byte for byte.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The delivery this one sends again (a redelivery), if any.
    redelivery_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    hook: Mapped[Webhook] = relationship(lazy="joined")


class WebhookAttempt(Base):
    """One try at posting a delivery: when, how long, and what came back (never headers)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_delivery", "delivery_id", "number"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    started_on: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The first KiB of the response body, as text.
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
