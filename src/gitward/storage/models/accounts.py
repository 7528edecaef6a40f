"""Accounts: users, their two-step recovery codes, and the sign-in rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow


class User(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_site_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Two-step verification: seeds sealed with the server secret (credentials/sealing.py).
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_pending_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The last accepted TOTP time step: a code is accepted once (no replay in its window).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set when a site administrator gave the account a temporary password: until the user
    # changes it, that password is good for nothing else (docs/accounts.md).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped whenever the password changes (by the user, a reset, the CLI): a web session
    # records the value it signed in under and is void once it differs, and cached password
    # verifications are keyed by it.
    password_epoch: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def account_id(self) -> str:
        return self.uuid.replace("-", "")


class RecoveryCode(Base):
    """A single-use two-step verification recovery code, as a keyed hash."""

    __tablename__ = "recovery_codes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RateLimitCounter(Base):
    """Failed-authentication counters, shared by every process through the database
    (or kept in Redis instead when GITWARD_REDIS_URL is set)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)
