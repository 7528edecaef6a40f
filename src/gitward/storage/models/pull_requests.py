"""Pull requests inside one repository: the request itself (numbered per repository from 1),
its participants (author, reviewers, others who took part, with their review status), its
comments (replies, inline on a file and line) and its activity (what happened to it, in
order). docs/pull-requests.md has the rules.

Who did something is kept as an *actor*: a user (`*_user_id`), or a credential acting as
itself (a repository, project or workspace access token, an OAuth client), named by its kind,
uuid and name as it was then — so that a pull request opened by a CI token still shows who
opened it after the token is revoked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gitward.storage.models.accounts import User
from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow
from gitward.storage.models.workspaces import Repository


class PullRequestCounter(Base):
    """The last pull request number handed out in a repository: numbers are never reused,
    not even after a pull request is deleted (Bitbucket Server's DELETE)."""

    __tablename__ = "pull_request_counters"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    last: Mapped[int] = mapped_column(Integer, default=0)


class PullRequest(Base):
    __tablename__ = "pull_requests"
    __table_args__ = (
        UniqueConstraint("repository_id", "number"),
        Index("ix_pull_requests_repository_state", "repository_id", "state"),
        # One open pull request per source and destination, even for two requests at once.
        Index(
            "ux_pull_requests_open_between", "repository_id", "source_branch",
            "destination_branch", unique=True,
            postgresql_where=text("state = 'OPEN'"), sqlite_where=text("state = 'OPEN'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE")
    )
    #: The id both APIs show: 1, 2, … in each repository.
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    #: OPEN, MERGED or DECLINED (Cloud's SUPERSEDED is never set).
    state: Mapped[str] = mapped_column(String(16), default="OPEN")
    author_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    author_kind: Mapped[str] = mapped_column(String(32))  # "user" or a credential kind
    author_uuid: Mapped[str] = mapped_column(String(36))
    author_name: Mapped[str] = mapped_column(String(255))
    source_branch: Mapped[str] = mapped_column(String(1024))
    source_commit: Mapped[str] = mapped_column(String(64))
    destination_branch: Mapped[str] = mapped_column(String(1024))
    #: The destination's commit when the pull request was opened, retargeted, or merged.
    destination_commit: Mapped[str] = mapped_column(String(64))
    merge_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    close_source_branch: Mapped[bool] = mapped_column(Boolean, default=False)
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Bitbucket Server's optimistic lock: +1 on every change of the pull request itself.
    version: Mapped[int] = mapped_column(Integer, default=0)
    #: Why it was declined (Cloud's `reason`).
    reason: Mapped[str] = mapped_column(Text, default="")
    closed_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    repository: Mapped[Repository] = relationship(lazy="joined")
    author_user: Mapped[User | None] = relationship(
        foreign_keys=[author_user_id], lazy="joined"
    )
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_user_id])
    participants: Mapped[list[PullRequestParticipant]] = relationship(
        lazy="selectin", order_by="PullRequestParticipant.id", cascade="all, delete-orphan",
        passive_deletes=True, back_populates="pull_request",
    )

    # Every UPDATE of the row checks and moves `version` (a stale writer gets StaleDataError).
    # Bitbucket Server's first version is 0.
    __mapper_args__: dict[str, Any] = {
        "version_id_col": version,
        "version_id_generator": lambda current: 0 if current is None else current + 1,
    }


class PullRequestParticipant(Base):
    """A user's part in a pull request: AUTHOR, REVIEWER or PARTICIPANT (commented,
    approved), and their review: UNAPPROVED, APPROVED or NEEDS_WORK."""

    __tablename__ = "pull_request_participants"
    __table_args__ = (
        UniqueConstraint("pull_request_id", "user_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="UNAPPROVED")
    #: When the user last took part (commented, reviewed); None for a reviewer who has not.
    participated_on: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The source commit the review was given on (Server's `lastReviewedCommit`).
    reviewed_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)

    user: Mapped[User] = relationship(lazy="joined")
    pull_request: Mapped[PullRequest] = relationship(back_populates="participants")


class PullRequestComment(Base):
    __tablename__ = "pull_request_comments"
    __table_args__ = (
        Index("ix_pull_request_comments_pull_request", "pull_request_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE")
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("pull_request_comments.id", ondelete="CASCADE"), nullable=True
    )
    author_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    author_kind: Mapped[str] = mapped_column(String(32))
    author_uuid: Mapped[str] = mapped_column(String(36))
    author_name: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    #: Inline comments: the file, and the line on the new side (`line_to`, Cloud's `to`) or
    #: the old side (`line_from`, Cloud's `from`); both None for a comment on the file.
    path: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    line_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    line_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Server's anchor: ADDED, REMOVED or CONTEXT (None for a file comment).
    line_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author_user: Mapped[User | None] = relationship(lazy="joined")


class PullRequestActivity(Base):
    """One thing that happened to a pull request: OPENED, UPDATED, RESCOPED, APPROVED,
    UNAPPROVED, NEEDS_WORK (changes requested), COMMENTED, MERGED, DECLINED, REOPENED.
    `details` holds what the kind needs (previous and new hashes, the changed fields)."""

    __tablename__ = "pull_request_activities"
    __table_args__ = (
        Index("ix_pull_request_activities_pull_request", "pull_request_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    actor_kind: Mapped[str] = mapped_column(String(32))
    actor_uuid: Mapped[str] = mapped_column(String(36))
    actor_name: Mapped[str] = mapped_column(String(255))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("pull_request_comments.id", ondelete="SET NULL"), nullable=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor_user: Mapped[User | None] = relationship(lazy="joined")
    comment: Mapped[PullRequestComment | None] = relationship(lazy="joined")
