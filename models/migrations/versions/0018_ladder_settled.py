"""ladder_settled: the deadline whose late steps the overdue ladder has all taken, in the
(status, deadline) index, so the daily read skips settled cases without a probe per case

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("issues", sa.Column("ladder_settled", sa.Date(), nullable=True))  # instant on both
    op.drop_index("ix_issue_status_deadline", table_name="issues")
    op.create_index(
        "ix_issue_status_deadline_ladder",
        "issues",
        ["status", "deadline", "ladder_settled"],
        postgresql_include=["id"],
    )
    # The cases the ladder has already finished with (its LATE_STEPS), so the first read after the upgrade skips them.
    op.execute(
        sa.text(
            "UPDATE issues SET ladder_settled = deadline WHERE status = 'assigned' AND deadline IS NOT NULL"
            " AND (SELECT count(*) FROM ladder_steps l WHERE l.issue_id = issues.id"
            " AND l.deadline = issues.deadline AND l.step IN ('overdue', 'leads', 'district')) = 3"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_issue_status_deadline_ladder", table_name="issues")
    op.create_index("ix_issue_status_deadline", "issues", ["status", "deadline"], postgresql_include=["id"])
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("ladder_settled")
