"""What each credential was used for: per action and UTC day, how many requests and when
the last one was (the usage report, docs/credential-usage.md)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gitward.storage.models.base import Base, UTCDateTime


class CredentialUse(Base):
    __tablename__ = "credential_usage"

    # The credential kind's value (`personal_access_token`, …) and its row id: every kind
    # keeps its own table, so this table references none of them (a revoked credential's
    # usage goes with the days it covers, kept 90 days).
    credential: Mapped[str] = mapped_column(String(40), primary_key=True)
    credential_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last_used_on: Mapped[datetime] = mapped_column(UTCDateTime)
