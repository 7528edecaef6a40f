"""Ref-scoped write for tokens

Revision ID: 0018
Revises: 0017

Personal and resource access tokens gain `ref_patterns`, the refs they may update (globs,
space separated; NULL: every ref), and `fast_forward_only` (docs/ref-scoped-tokens.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_TABLES = ("personal_access_tokens", "resource_access_tokens")


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch would rebuild the tables on SQLite (and drop AUTOINCREMENT).
    for table in _TABLES:
        op.add_column(table, sa.Column("ref_patterns", sa.String(length=13000), nullable=True))
        op.add_column(
            table,
            sa.Column("fast_forward_only", sa.Boolean(), nullable=False,
                      server_default=sa.false()),
        )


def downgrade() -> None:
    # Plain DROP COLUMNs too (SQLite 3.35+), for the same reason.
    for table in _TABLES:
        op.drop_column(table, "fast_forward_only")
        op.drop_column(table, "ref_patterns")
