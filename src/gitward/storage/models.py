"""SQLAlchemy 2 models. The schema itself is owned by the Alembic migrations beside this file."""

from __future__ import annotations

import uuid as uuid_module
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid_module.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    # Every table with an integer id sets sqlite_autoincrement: SQLite then never hands an id
    # out again after its row is deleted (ids name credentials in revocations and audit
    # events; PostgreSQL's sequences never reuse one anyway). Migration 0007.
    pass


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

    @property
    def account_id(self) -> str:
        return self.uuid.replace("-", "")


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkspaceMember(Base):
    __tablename__ = "workspace_members"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("workspace_id", "key"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    is_private: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    workspace: Mapped[Workspace] = relationship(lazy="joined")


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("workspace_id", "slug"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="RESTRICT"), index=True
    )
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    is_private: Mapped[bool] = mapped_column(Boolean, default=True)
    mainbranch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bytes of the repository's objects on disk, as of the last push (GitStore.size).
    size: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    workspace: Mapped[Workspace] = relationship(lazy="joined")
    project: Mapped[Project] = relationship(lazy="joined")

    @property
    def storage_name(self) -> str:
        """The directory name on disk: derived from the uuid, never from user input."""
        return self.uuid + ".git"


class ProjectGrant(Base):
    __tablename__ = "project_grants"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    permission: Mapped[str] = mapped_column(String(16))

    user: Mapped[User] = relationship(lazy="joined")


class RepositoryGrant(Base):
    __tablename__ = "repository_grants"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    permission: Mapped[str] = mapped_column(String(16))

    user: Mapped[User] = relationship(lazy="joined")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created_on", "created_on"),
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


class RecoveryCode(Base):
    """A single-use two-step verification recovery code, as a keyed hash."""

    __tablename__ = "recovery_codes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


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


class RateLimitCounter(Base):
    """Failed-authentication counters, shared by every process through the database
    (or kept in Redis instead when GITWARD_REDIS_URL is set)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)


class CredentialGeneration(Base):
    """One row, bumped by every change that ends or narrows a credential (see cache.py)."""

    __tablename__ = "credential_generation"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


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
