"""Temporary passwords and the password epoch.

Revision ID: 0011
Revises: 0008

`users.must_change_password`: a site administrator reset the password to a temporary one,
which authenticates for nothing but changing it. `users.password_epoch`: bumped by every
password change, so that web sessions signed in under an older password end.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column(
        "users",
        sa.Column("password_epoch", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_epoch")
        batch.drop_column("must_change_password")
