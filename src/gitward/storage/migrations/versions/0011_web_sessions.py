"""web sessions

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:45:00

Signed-in browsers (the `gitward_session` cookie): only the keyed hash of the cookie's secret
is stored, with the times that decide its idle and absolute expiry and its freshness.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('signed_in_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_ip', sa.String(length=64), nullable=True),
        sa.Column('last_ip', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_user_id'))
    op.drop_table('web_sessions')
