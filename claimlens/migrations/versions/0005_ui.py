"""indexes for the workbench queue's filters and counts per filter value

The queue filters claims by "has a finding of this severity / code / check" and counts, per value, the claims
with such a finding; without these indexes each of those subqueries scans every finding (docs/benchmarks.md,
"Workbench": SQLite p95 365 ms at 10,000 claims when filtered by severity). (column, claim_id) so the lookups
are answered from the index alone.

Revision ID: 0005_ui
Revises: 0004
"""

from alembic import op

revision = '0005_ui'
down_revision = '0004'
branch_labels = None
depends_on = None

INDEXES = {"ix_findings_severity_claim": ["severity", "claim_id"],
           "ix_findings_code_claim": ["code", "claim_id"],
           "ix_findings_check_claim": ["check", "claim_id"]}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "findings", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="findings")
