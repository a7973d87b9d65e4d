"""workbench: decisions, claim outcomes, append-only audit events, UI sessions

Revision ID: 0003_workbench
Revises: 0002
Create Date: 2026-12-06 16:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_workbench'
down_revision = '0002'
branch_labels = None
depends_on = None

# The audit table is append-only: the database itself refuses UPDATE and DELETE, so neither a bug nor a
# stolen application credential can quietly rewrite who read what.
PG_GUARD = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
"""
SQLITE_GUARDS = [
    ("CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
     "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"),
    ("CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
     "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"),
]


def upgrade() -> None:
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('finding_key', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=96), nullable=True),
    sa.Column('check', sa.String(length=64), nullable=True),
    sa.Column('severity', sa.Integer(), nullable=True),
    sa.Column('photo_id', sa.String(length=36), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    op.create_index('ix_decisions_claim_key', 'decisions', ['claim_id', 'finding_key'], unique=False)
    op.create_table('claim_outcomes',
    sa.Column('claim_id', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('claim_id', name=op.f('pk_claim_outcomes'))
    )
    op.create_index(op.f('ix_claim_outcomes_outcome'), 'claim_outcomes', ['outcome'], unique=False)
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('claim_id', sa.String(length=64), nullable=True),
    sa.Column('target', sa.String(length=512), nullable=True),
    sa.Column('client_addr', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    op.create_index(op.f('ix_audit_events_at'), 'audit_events', ['at'], unique=False)
    op.create_index(op.f('ix_audit_events_principal'), 'audit_events', ['principal'], unique=False)
    op.create_index(op.f('ix_audit_events_action'), 'audit_events', ['action'], unique=False)
    op.create_index('ix_audit_events_claim_at', 'audit_events', ['claim_id', 'at'], unique=False)
    op.create_table('ui_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_ui_sessions'))
    )
    op.create_index(op.f('ix_ui_sessions_principal'), 'ui_sessions', ['principal'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_GUARD)
    else:
        for stmt in SQLITE_GUARDS:
            op.execute(stmt)


def downgrade() -> None:
    op.drop_table('ui_sessions')
    op.drop_table('audit_events')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table('claim_outcomes')
    op.drop_index('ix_decisions_claim_key', table_name='decisions')
    op.drop_table('decisions')
