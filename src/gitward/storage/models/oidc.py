"""Workload identity federation: OIDC trusts, the ID tokens (`jti`) already exchanged, and
which resource access tokens a trust minted (docs/oidc-federation.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow


class OidcTrust(Base):
    """A repository's, project's or workspace's trust in the ID tokens of one OIDC issuer,
    for jobs whose token matches its audience, subject glob and claim globs.

    Like the resource's access tokens it belongs to the resource (deleting the resource
    deletes it) and outlives its creator, who is kept by id and name only.
    """

    __tablename__ = "oidc_trusts"
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
    # The exchange finds the trusts of a token's issuer by this index.
    issuer: Mapped[str] = mapped_column(String(2000), index=True)
    audience: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(1024))
    # JSON object: claim name -> glob.
    claims: Mapped[str] = mapped_column(Text, default="{}")
    scopes: Mapped[str] = mapped_column(String(512))  # space separated
    ttl_seconds: Mapped[int] = mapped_column(Integer)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_name: Mapped[str] = mapped_column(String(64), default="")


class OidcUsedJti(Base):
    """An ID token already exchanged, by issuer and `jti`, kept until it expires: each is
    accepted once, whichever worker or host sees it (the unique constraint decides)."""

    __tablename__ = "oidc_used_jtis"
    __table_args__ = (UniqueConstraint("issuer", "jti"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(2000))
    jti: Mapped[str] = mapped_column(String(255))
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OidcMintedToken(Base):
    """A resource access token a trust minted: deleting the trust deletes it (the service
    does, through this row) and every access token the trust handed out ends."""

    __tablename__ = "oidc_minted_tokens"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("resource_access_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    trust_id: Mapped[int] = mapped_column(
        ForeignKey("oidc_trusts.id", ondelete="CASCADE"), index=True
    )
