"""Push protection per repository: on, off, or (NULL) as the site says; and the index that
finds what an owner is told about (revocations of their leaked credentials, by target).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repositories", sa.Column("push_protection", sa.Boolean(), nullable=True))
    op.create_index("ix_audit_events_target_action", "audit_events", ["target", "action"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_target_action", table_name="audit_events")
    with op.batch_alter_table("repositories") as batch:
        batch.drop_column("push_protection")
