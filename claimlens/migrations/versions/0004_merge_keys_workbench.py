"""merge the keys (0003_keys) and workbench (0003_workbench) branches

Both were written side by side off 0002; this revision joins them so the history has one head again.

Revision ID: 0004
Revises: 0003_keys, 0003_workbench
"""

revision = '0004'
down_revision = ('0003_keys', '0003_workbench')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
