"""ix_issue_township_resolved: a township's resolved issues in order of resolved_days, so the
dashboard's median per township walks the index up to its middle instead of sorting the cohort

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_issue_township_resolved", "issues", ["township_id", "status", "resolved_days", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_issue_township_resolved", table_name="issues")
