"""ix_issue_village_open, ix_issue_township_open: a unit's open, overdue and oldest open issues read off the
index (status, then deadline) instead of every issue of the unit: the weekly digest's counts
for each bound village and township group

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name, column in (("ix_issue_village_open", "village_id"), ("ix_issue_township_open", "township_id")):
        op.create_index(name, "issues", [column, "status", "deadline", "created_at"], postgresql_include=["id"])


def downgrade() -> None:
    op.drop_index("ix_issue_township_open", table_name="issues")
    op.drop_index("ix_issue_village_open", table_name="issues")
