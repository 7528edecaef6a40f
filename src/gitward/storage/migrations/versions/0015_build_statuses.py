"""build statuses

Revision ID: 0015
Revises: 0014

What CI servers report about commits: one row per (repository, commit, key), found by
repository and commit (the unique constraint's prefix) or by commit alone (Bitbucket Server's
repository-less build-status API).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("ref", sa.String(length=1024), nullable=True),
        sa.Column("build_number", sa.String(length=255), nullable=True),
        sa.Column("parent", sa.String(length=1024), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("tests_successful", sa.Integer(), nullable=True),
        sa.Column("tests_failed", sa.Integer(), nullable=True),
        sa.Column("tests_skipped", sa.Integer(), nullable=True),
        sa.Column("reported_by", sa.String(length=255), nullable=False),
        sa.Column("created_on", gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_on", gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "commit", "key"),
        sa.UniqueConstraint("uuid"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_build_statuses_commit", "build_statuses", ["commit"])


def downgrade() -> None:
    op.drop_index("ix_build_statuses_commit", table_name="build_statuses")
    op.drop_table("build_statuses")
