"""Narrowed tokens

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 18:30:00

Personal and resource access tokens gain `narrowing_key`: the public half of the key their
holder narrows them with (docs/narrowed-tokens.md), unique, NULL for tokens made before.
`narrowed_revocations` keeps the narrowed tokens revoked on their own, by the public key of
their last block; nothing secret is stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_NARROWABLE = ('personal_access_tokens', 'resource_access_tokens')


def upgrade() -> None:
    for table in _NARROWABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('narrowing_key', sa.String(length=64), nullable=True))
        # An index, not a constraint: SQLite would rebuild the table for a constraint.
        op.create_index(f'ix_{table}_narrowing_key', table, ['narrowing_key'], unique=True)
    op.create_table(
        'narrowed_revocations',
        sa.Column('block_key', sa.String(length=64), nullable=False),
        sa.Column('personal_token_id', sa.Integer(), nullable=True),
        sa.Column('resource_token_id', sa.Integer(), nullable=True),
        sa.Column('revoked_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['personal_token_id'], ['personal_access_tokens.id'],
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['resource_token_id'], ['resource_access_tokens.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('block_key'),
    )
    with op.batch_alter_table('narrowed_revocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_narrowed_revocations_personal_token_id'),
                              ['personal_token_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_narrowed_revocations_resource_token_id'),
                              ['resource_token_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('narrowed_revocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_narrowed_revocations_resource_token_id'))
        batch_op.drop_index(batch_op.f('ix_narrowed_revocations_personal_token_id'))
    op.drop_table('narrowed_revocations')
    for table in _NARROWABLE:
        op.drop_index(f'ix_{table}_narrowing_key', table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('narrowing_key')
