"""api keys: expiry, last use, rotation grace

Revision ID: 0003_keys
Revises: 0002
Create Date: 2026-12-06 16:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_keys'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('previous_key_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_api_keys_previous_key_hash', ['previous_key_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_api_keys_previous_key_hash')
        batch_op.drop_column('previous_expires_at')
        batch_op.drop_column('previous_key_hash')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('expires_at')
