"""Stored credentials (keyed hashes only) and the credential generation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gitward.storage.models.accounts import User
from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow


class PersonalAccessToken(Base):
    """A personal access token: metadata and the keyed hash of its secret, never the secret."""

    __tablename__ = "personal_access_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    repo_permission: Mapped[str] = mapped_column(String(32))
    project_permission: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expiry_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_authenticated: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rotated_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The networks it may be used from, space separated (None: anywhere).
    allowed_ips: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    #: The refs it may update, globs space separated (None: every ref; domain/refs.py).
    ref_patterns: Mapped[str | None] = mapped_column(String(13000), nullable=True)
    #: It may only create refs and fast-forward them.
    fast_forward_only: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: The public half of its narrowing key, hex (credentials/narrowing.py): names it in the
    #: tokens narrowed from it. Public, not secret; None for a token made before narrowing.
    narrowing_key: Mapped[str | None] = mapped_column(
        String(64), nullable=True, unique=True, index=True
    )

    user: Mapped[User] = relationship(lazy="raise")


class ResourceAccessToken(Base):
    """A repository, project or workspace access token: it acts as itself, inside its resource.

    Deleting the resource deletes its tokens (foreign keys cascade). The creator is kept by id
    and name only, so that the token outlives the creator's account.
    """

    __tablename__ = "resource_access_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(16))  # repository | project | workspace
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(512))  # space separated, as granted
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_name: Mapped[str] = mapped_column(String(64), default="")
    #: The networks it may be used from, space separated (None: anywhere).
    allowed_ips: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    #: The refs it may update, globs space separated (None: every ref; domain/refs.py).
    ref_patterns: Mapped[str | None] = mapped_column(String(13000), nullable=True)
    #: It may only create refs and fast-forward them.
    fast_forward_only: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: As PersonalAccessToken.narrowing_key.
    narrowing_key: Mapped[str | None] = mapped_column(
        String(64), nullable=True, unique=True, index=True
    )


class NarrowedRevocation(Base):
    """A narrowed token revoked on its own (docs/narrowed-tokens.md): the public key of its
    last block, which every token narrowed from it holds too. Nothing secret. Deleting the
    parent deletes its rows (its narrowed tokens are dead anyway)."""

    __tablename__ = "narrowed_revocations"

    block_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    personal_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("personal_access_tokens.id", ondelete="CASCADE"), nullable=True, index=True
    )
    resource_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_access_tokens.id", ondelete="CASCADE"), nullable=True, index=True
    )
    revoked_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppPassword(Base):
    """A user's app password (`gwapp_`): scoped, bounded by the user's live levels."""

    __tablename__ = "app_passwords"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(512))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The networks it may be used from, space separated (None: anywhere).
    allowed_ips: Mapped[str | None] = mapped_column(String(4096), nullable=True)


class ApiToken(Base):
    """A user's API token (`gwapi_`): Atlassian-named scopes, a mandatory expiry, bounded by
    the user's live levels."""

    __tablename__ = "api_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(1024))  # space separated, as granted
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The networks it may be used from, space separated (None: anywhere).
    allowed_ips: Mapped[str | None] = mapped_column(String(4096), nullable=True)


class WebSession(Base):
    """A signed-in browser (`gwses_` cookie): the keyed hash of its secret and its times.

    `signed_in_on` is the last time the user typed their password for it (sign-in, or again
    to create a credential); `last_seen_on` moves at most once a minute (idle timeout);
    `expires_on` is the absolute end, fixed at sign-in.
    """

    __tablename__ = "web_sessions"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_in_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime)
    created_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class CredentialGeneration(Base):
    """One row, bumped by every change that ends or narrows a credential (see cache.py)."""

    __tablename__ = "credential_generation"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
