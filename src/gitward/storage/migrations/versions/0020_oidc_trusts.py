"""OIDC trusts (workload identity federation)

Revision ID: 0020
Revises: 0019

A resource's trusts in OIDC issuers, found by issuer at each exchange; the ID tokens already
exchanged (unique by issuer and jti, kept until they expire); and which resource access tokens
each trust minted, so that deleting the trust ends them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = gitward.storage.models.UTCDateTime(timezone=True)
    op.create_table(
        "oidc_trusts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("repository_id", sa.Integer(), nullable=True),
        sa.Column("issuer", sa.String(length=2000), nullable=False),
        sa.Column("audience", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("claims", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=512), nullable=False),
        sa.Column("ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("created_on", moment, nullable=False),
        sa.Column("last_used_on", moment, nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by_name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
        sqlite_autoincrement=True,
    )
    for column in ("workspace_id", "project_id", "repository_id", "issuer"):
        op.create_index(f"ix_oidc_trusts_{column}", "oidc_trusts", [column])
    op.create_table(
        "oidc_used_jtis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=2000), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_on", moment, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer", "jti"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_oidc_used_jtis_expires_on", "oidc_used_jtis", ["expires_on"])
    op.create_table(
        "oidc_minted_tokens",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("trust_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["resource_access_tokens.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["trust_id"], ["oidc_trusts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_id"),
    )
    op.create_index("ix_oidc_minted_tokens_trust_id", "oidc_minted_tokens", ["trust_id"])


def downgrade() -> None:
    op.drop_index("ix_oidc_minted_tokens_trust_id", table_name="oidc_minted_tokens")
    op.drop_table("oidc_minted_tokens")
    op.drop_index("ix_oidc_used_jtis_expires_on", table_name="oidc_used_jtis")
    op.drop_table("oidc_used_jtis")
    for column in ("issuer", "repository_id", "project_id", "workspace_id"):
        op.drop_index(f"ix_oidc_trusts_{column}", table_name="oidc_trusts")
    op.drop_table("oidc_trusts")
