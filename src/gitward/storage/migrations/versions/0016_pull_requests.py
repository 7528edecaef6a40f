"""pull requests

Revision ID: 0016
Revises: 0015

Pull requests inside one repository, numbered per repository (the counter never hands a
number out twice), at most one open per source and destination (a partial unique index),
their participants, comments and activity.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, gitward.storage.models.UTCDateTime(timezone=True), nullable=nullable)


def _actor(prefix: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column(f"{prefix}_user_id", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_kind", sa.String(length=32), nullable=False),
        sa.Column(f"{prefix}_uuid", sa.String(length=36), nullable=False),
        sa.Column(f"{prefix}_name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint([f"{prefix}_user_id"], ["users.id"], ondelete="SET NULL"),
    ]


def upgrade() -> None:
    op.create_table(
        "pull_request_counters",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repository_id"),
    )
    op.create_table(
        "pull_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        *_actor("author"),
        sa.Column("source_branch", sa.String(length=1024), nullable=False),
        sa.Column("source_commit", sa.String(length=64), nullable=False),
        sa.Column("destination_branch", sa.String(length=1024), nullable=False),
        sa.Column("destination_commit", sa.String(length=64), nullable=False),
        sa.Column("merge_commit", sa.String(length=64), nullable=True),
        sa.Column("close_source_branch", sa.Boolean(), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("closed_by_user_id", sa.Integer(), nullable=True),
        _when("created_on"),
        _when("updated_on"),
        _when("closed_on", nullable=True),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["closed_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "number"),
        sa.UniqueConstraint("uuid"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_pull_requests_repository_state", "pull_requests", ["repository_id", "state"]
    )
    op.create_index(
        "ux_pull_requests_open_between", "pull_requests",
        ["repository_id", "source_branch", "destination_branch"], unique=True,
        postgresql_where=sa.text("state = 'OPEN'"), sqlite_where=sa.text("state = 'OPEN'"),
    )
    op.create_table(
        "pull_request_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _when("participated_on", nullable=True),
        sa.Column("reviewed_commit", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pull_requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pull_request_id", "user_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "pull_request_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        *_actor("author"),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=True),
        sa.Column("line_from", sa.Integer(), nullable=True),
        sa.Column("line_to", sa.Integer(), nullable=True),
        sa.Column("line_type", sa.String(length=16), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("created_on"),
        _when("updated_on"),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pull_requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["pull_request_comments.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_pull_request_comments_pull_request", "pull_request_comments", ["pull_request_id"]
    )
    op.create_table(
        "pull_request_activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        *_actor("actor"),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        _when("created_on"),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pull_requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["pull_request_comments.id"], ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_pull_request_activities_pull_request", "pull_request_activities",
        ["pull_request_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_pull_request_activities_pull_request", "pull_request_activities")
    op.drop_table("pull_request_activities")
    op.drop_index("ix_pull_request_comments_pull_request", "pull_request_comments")
    op.drop_table("pull_request_comments")
    op.drop_table("pull_request_participants")
    op.drop_index("ux_pull_requests_open_between", "pull_requests")
    op.drop_index("ix_pull_requests_repository_state", "pull_requests")
    op.drop_table("pull_requests")
    op.drop_table("pull_request_counters")
