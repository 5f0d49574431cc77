"""cards: the interactive cards (互动卡片) delivered, by DingTalk's outTrackId, with the case and
the step each one shows

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("out_track_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("outbox_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("out_track_id"),
    )
    op.create_index(op.f("ix_card_instances_issue_id"), "card_instances", ["issue_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_card_instances_issue_id"), table_name="card_instances")
    op.drop_table("card_instances")
