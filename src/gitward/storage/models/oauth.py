"""OAuth 2.0: consumers, authorization codes, access and refresh tokens, JWT assertions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow


class OAuthConsumer(Base):
    """An OAuth 2.0 consumer of a workspace (Bitbucket Cloud's "OAuth consumers").

    `key` is the public client_id; the secret is sealed (credentials/sealing.py), never kept in
    clear, because HS256 JWT assertions are verified with it.
    """

    __tablename__ = "oauth_consumers"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(64), unique=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_private: Mapped[bool] = mapped_column(Boolean, default=False)
    scopes: Mapped[str] = mapped_column(String(512))  # space separated, as granted
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_name: Mapped[str] = mapped_column(String(64), default="")


class OAuthAuthorizationCode(Base):
    """A single-use authorization code, as a keyed hash. `family` names every token issued
    from it, so that a replayed code revokes them all."""

    __tablename__ = "oauth_authorization_codes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    consumer_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_consumers.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The redirect_uri sent to the authorize endpoint (None when it was omitted).
    redirect_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    scopes: Mapped[str] = mapped_column(String(512))
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    family: Mapped[str] = mapped_column(String(36), default=new_uuid)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class OAuthAccessToken(Base):
    """An OAuth access token (`gwoat_`), as a keyed hash. `user_id` is None for tokens of
    the client credentials and JWT grants, which act as the consumer itself."""

    __tablename__ = "oauth_access_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    consumer_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_consumers.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    scopes: Mapped[str] = mapped_column(String(512))
    grant_type: Mapped[str] = mapped_column(String(64))
    family: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class OAuthRefreshToken(Base):
    """An OAuth refresh token (`gwort_`), as a keyed hash; rotated on every use. A used one
    presented again revokes its whole family (every access and refresh token descended from
    the same grant)."""

    __tablename__ = "oauth_refresh_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    consumer_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_consumers.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[str] = mapped_column(String(512))
    family: Mapped[str] = mapped_column(String(36), index=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class OAuthJwtAssertion(Base):
    """A JWT assertion already exchanged (its `jti`), kept until it expires: single use."""

    __tablename__ = "oauth_jwt_assertions"
    __table_args__ = (UniqueConstraint("consumer_id", "jti"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_consumers.id", ondelete="CASCADE"), index=True
    )
    jti: Mapped[str] = mapped_column(String(255))
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
