"""API tokens and address allow-lists

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 15:30:00

API tokens (`gwapi_`, Atlassian-named scopes, a mandatory expiry): only the keyed hash of
the secret is stored. Every token kind and app passwords gain `allowed_ips`, the networks
they may be used from (space separated; NULL: anywhere).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gitward.storage.models

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_ALLOW_LISTED = ('personal_access_tokens', 'resource_access_tokens', 'app_passwords')


def upgrade() -> None:
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.String(length=1024), nullable=False),
        sa.Column('created_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used_on', gitward.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_ip', sa.String(length=64), nullable=True),
        sa.Column('allowed_ips', sa.String(length=4096), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
        sa.UniqueConstraint('uuid'),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)
    for table in _ALLOW_LISTED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('allowed_ips', sa.String(length=4096), nullable=True))


def downgrade() -> None:
    for table in _ALLOW_LISTED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('allowed_ips')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))
    op.drop_table('api_tokens')
