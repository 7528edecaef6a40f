"""Notices to users (a credential used from somewhere new, a credential about to expire) and
where each credential has been used from (docs/notices.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gitward.storage.models.base import Base, UTCDateTime, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user", "user_id", "id"),
        # The mailer's queue: notices not mailed yet.
        Index("ix_notifications_unmailed", "mailed_on", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # `credential.new-address`, `credential.new-client`, `credential.expiring`.
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    # Notices that must exist once whoever notices them (an expiry notice per credential and
    # threshold, created by any worker or host): inserting a second is a no-op.
    once_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Mail: sent at `mailed_on`; a mailer holds it until `mail_claimed_until`; given up
    # after a few attempts (`mail_attempts`), or at once when the site mails nothing.
    mailed_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mail_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mail_attempts: Mapped[int] = mapped_column(Integer, default=0)
    mail_error: Mapped[str | None] = mapped_column(String(255), nullable=True)


class CredentialSighting(Base):
    """An address or a client (the product of its User-Agent) a credential was used from."""

    __tablename__ = "credential_sightings"

    credential: Mapped[str] = mapped_column(String(40), primary_key=True)
    credential_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    what: Mapped[str] = mapped_column(String(8), primary_key=True)  # address | client
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
