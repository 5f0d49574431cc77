"""count_facts.prior_at: each resolution carries the time of the issue's latest 办结 below the
district before it, so the dashboard's trend finds each case's first resolution in its window
from the (kind, at) index, without grouping the window's rows by issue

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOLUTIONS = "('village_resolved', 'township_resolved', 'district_resolved')"
OLD = ["kind", "at", "prev_at", "until", "tuesday", "issue_id"]


def upgrade() -> None:
    with op.batch_alter_table("count_facts") as batch:
        batch.add_column(sa.Column("prior_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # The same rule as models.facts.priors, in (at, seq) order.
    op.execute(
        "UPDATE count_facts SET prior_at = (SELECT max(b.at) FROM count_facts b"
        " WHERE b.issue_id = count_facts.issue_id AND b.kind IN ('village_resolved', 'township_resolved')"
        " AND (b.at < count_facts.at OR (b.at = count_facts.at AND b.seq < count_facts.seq)))"
        f" WHERE kind IN {RESOLUTIONS}"
    )
    op.drop_index("ix_fact_kind_at", table_name="count_facts")
    op.create_index("ix_fact_kind_at", "count_facts", [*OLD, "prior_at"])


def downgrade() -> None:
    op.drop_index("ix_fact_kind_at", table_name="count_facts")
    op.create_index("ix_fact_kind_at", "count_facts", OLD)
    with op.batch_alter_table("count_facts") as batch:
        batch.drop_column("prior_at")
