"""credential usage

Revision ID: 0021
Revises: 0020

What each credential was used for, per action and UTC day (the usage report): one row per
(credential kind, credential id, action, day), its count added to by every process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_usage",
        sa.Column("credential", sa.String(length=40), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column(
            "last_used_on", gitward.storage.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("credential", "credential_id", "action", "day"),
    )


def downgrade() -> None:
    op.drop_table("credential_usage")
