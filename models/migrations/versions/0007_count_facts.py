"""count facts: the §2 counts kept as the events happen, backfilled from the events; issues'
resolved_days; indexes for period and unit-subtree reads of issues, the overdue ladder and the inbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The event kinds that move an issue's status, as of this revision (models.events.STATUS_KINDS).
MOVES = "('created', 'escalated', 'reviewed', 'assigned', 'resolved', 'returned', 'reopened', 'closed')"
COLUMNS = "issue_id, kind, seq, at, prev_at, until, tuesday, township_id, village_id, department_id"
# Each fact as models.facts.facts_of derives it from an issue's events; merged duplicates have none.
BACKFILL = (
    # 村 排摸: created at village level.
    """SELECT e.issue_id, 'village_entered', e.seq, e.at, NULL, NULL, FALSE, i.township_id, i.village_id,
              i.department_id
       FROM issue_events e JOIN issues i ON i.id = e.issue_id
       WHERE e.kind = 'created' AND e.level = 'village' AND i.status <> 'closed'""",
    # 乡镇 提交: the earliest entry at township level (created there or escalated to it).
    """SELECT f.issue_id, 'township_entered', f.seq, f.at, NULL, NULL, FALSE, i.township_id, i.village_id,
              i.department_id
       FROM (SELECT issue_id, seq, at, ROW_NUMBER() OVER (PARTITION BY issue_id ORDER BY at, seq) AS n
             FROM issue_events WHERE kind IN ('created', 'escalated') AND level = 'township') f
       JOIN issues i ON i.id = f.issue_id
       WHERE f.n = 1 AND i.status <> 'closed'""",
    # 区 交办: the first assignment at district level, with its 周二无会日 flag.
    """SELECT f.issue_id, 'district_assigned', f.seq, f.at, NULL, NULL, f.tuesday, i.township_id, i.village_id,
              i.department_id
       FROM (SELECT issue_id, seq, at, tuesday, ROW_NUMBER() OVER (PARTITION BY issue_id ORDER BY seq) AS n
             FROM issue_events WHERE kind = 'assigned' AND level = 'district') f
       JOIN issues i ON i.id = f.issue_id
       WHERE f.n = 1 AND i.status <> 'closed'""",
    # 办结 at village and township level, each with the previous one at that level.
    """SELECT f.issue_id, f.level || '_resolved', f.seq, f.at, f.prev_at, NULL, FALSE, i.township_id,
              i.village_id, i.department_id
       FROM (SELECT issue_id, level, seq, at,
                    LAG(at) OVER (PARTITION BY issue_id, level ORDER BY at, seq) AS prev_at
             FROM issue_events WHERE kind = 'resolved' AND level IN ('village', 'township')) f
       JOIN issues i ON i.id = f.issue_id
       WHERE i.status <> 'closed'""",
    # 化解 at district level, valid until the earliest later status change, with the first
    # district assignment (its time and flag), inserted just before.
    f"""SELECT f.issue_id, 'district_resolved', f.seq, f.at, a.at, f.until, COALESCE(a.tuesday, FALSE),
               i.township_id, i.village_id, i.department_id
       FROM (SELECT issue_id, kind, level, seq, at,
                    MIN(at) OVER (PARTITION BY issue_id ORDER BY seq
                                  ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS until
             FROM issue_events WHERE kind IN {MOVES}) f
       JOIN issues i ON i.id = f.issue_id
       LEFT JOIN count_facts a ON a.issue_id = f.issue_id AND a.kind = 'district_assigned'
       WHERE f.kind = 'resolved' AND f.level = 'district' AND i.status <> 'closed'""",
)

# (resolved_at - created_at) in days exactly as Python's timedelta.total_seconds() / 86400: the
# whole microseconds between them, divided as doubles. SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff'
# (strftime would round the fraction to milliseconds, so it gets the text without it).
RESOLVED_DAYS = {
    "sqlite": """((CAST(strftime('%s', substr(resolved_at, 1, 19)) AS INTEGER)
                   - CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER)) * 1000000
                  + CAST(substr(resolved_at, 21, 6) AS INTEGER) - CAST(substr(created_at, 21, 6) AS INTEGER))
                 / 1000000.0 / 86400.0""",
    "postgresql": """CAST(CAST(EXTRACT(EPOCH FROM resolved_at - created_at) * 1000000 AS BIGINT) AS DOUBLE PRECISION)
                     / CAST(1000000 AS DOUBLE PRECISION) / CAST(86400 AS DOUBLE PRECISION)""",
}


def upgrade() -> None:
    op.create_table(
        "count_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("prev_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("tuesday", sa.Boolean(), nullable=False),
        sa.Column("township_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for statement in BACKFILL:
        op.execute(f"INSERT INTO count_facts ({COLUMNS}) {statement}")
    with op.batch_alter_table("count_facts", schema=None) as batch_op:
        batch_op.create_index("ix_fact_issue_kind", ["issue_id", "kind", "at", "until"], unique=False)
        kind_at = ["kind", "at", "prev_at", "until", "tuesday", "issue_id"]
        batch_op.create_index("ix_fact_kind_at", kind_at, unique=False)
        tail = ["kind", "at", "prev_at", "until", "tuesday"]
        batch_op.create_index("ix_fact_township_kind_at", ["township_id", *tail], unique=False)
        batch_op.create_index("ix_fact_village_kind_at", ["village_id", *tail], unique=False)
        batch_op.create_index("ix_fact_department_kind_at", ["department_id", *tail], unique=False)
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_days", sa.Float(), nullable=True))
    dialect = op.get_bind().dialect.name
    op.execute(f"UPDATE issues SET resolved_days = {RESOLVED_DAYS[dialect]} WHERE resolved_at IS NOT NULL")
    cover = ["status", "deadline", "resolved_days"]
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index("ix_issues_township_id")
        batch_op.drop_index("ix_issues_village_id")
        batch_op.create_index("ix_issue_village_created", ["village_id", "created_at"], unique=False)
        batch_op.create_index("ix_issue_township_created", ["township_id", "created_at", *cover], unique=False)
        batch_op.create_index("ix_issue_created", ["created_at", "township_id", *cover], unique=False)
        batch_op.create_index(
            "ix_issue_status_deadline", ["status", "deadline"], unique=False, postgresql_include=["id"]
        )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_status"))
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index("ix_issue_status_deadline")
        batch_op.drop_index("ix_issue_created")
        batch_op.drop_index("ix_issue_township_created")
        batch_op.drop_index("ix_issue_village_created")
        batch_op.create_index("ix_issues_village_id", ["village_id"], unique=False)
        batch_op.create_index("ix_issues_township_id", ["township_id"], unique=False)
        batch_op.drop_column("resolved_days")
    op.drop_table("count_facts")
