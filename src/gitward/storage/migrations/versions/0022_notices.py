"""notices

Revision ID: 0022
Revises: 0021

Notices to users (shown on their pages, mailed through the site's relay) and the addresses and
clients each credential was used from (a new one is a notice).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UTC = gitward.storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("once_key", sa.String(length=255), nullable=True),
        sa.Column("created_on", UTC, nullable=False),
        sa.Column("read_on", UTC, nullable=True),
        sa.Column("mailed_on", UTC, nullable=True),
        sa.Column("mail_claimed_until", UTC, nullable=True),
        sa.Column("mail_attempts", sa.Integer(), nullable=False),
        sa.Column("mail_error", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("once_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notifications_user", "notifications", ["user_id", "id"])
    op.create_index("ix_notifications_unmailed", "notifications", ["mailed_on", "id"])
    op.create_table(
        "credential_sightings",
        sa.Column("credential", sa.String(length=40), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("first_seen", UTC, nullable=False),
        sa.PrimaryKeyConstraint("credential", "credential_id", "what", "value"),
    )


def downgrade() -> None:
    op.drop_table("credential_sightings")
    op.drop_index("ix_notifications_unmailed", table_name="notifications")
    op.drop_index("ix_notifications_user", table_name="notifications")
    op.drop_table("notifications")
