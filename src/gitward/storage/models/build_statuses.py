"""Build statuses: what a CI server reported about one commit of one repository, one row per
(repository, commit, key) — reporting the same key again updates the row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow
from gitward.storage.models.workspaces import Repository


class BuildStatus(Base):
    __tablename__ = "build_statuses"
    __table_args__ = (
        # The per-commit listing of a repository reads this index's prefix.
        UniqueConstraint("repository_id", "commit", "key"),
        # The repository-less Server API (`/rest/build-status/1.0/commits/{id}`).
        Index("ix_build_statuses_commit", "commit"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE")
    )
    # The full commit id, lower case (40 hex digits for SHA-1, 64 for SHA-256).
    commit: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    # SUCCESSFUL, FAILED, INPROGRESS or STOPPED (docs/build-statuses.md).
    state: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Cloud's `refname`, Server's `ref`.
    ref: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    # Server's newer API only.
    build_number: Mapped[str | None] = mapped_column(String(255), nullable=True)
    parent: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tests_successful: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tests_failed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tests_skipped: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Who reported it last (the audit actor: `user:alice`, `token:…`): another caller needs
    # repository admin to replace it.
    reported_by: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    repository: Mapped[Repository] = relationship(lazy="joined")
