"""photos: pictures fetched from DingTalk on receipt and kept

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "photo_downloads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("msg_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("claimed_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("msg_id", "code", name="uq_photo_msg_code"),
    )
    op.create_index(op.f("ix_photo_downloads_issue_id"), "photo_downloads", ["issue_id"], unique=False)
    op.create_index(op.f("ix_photo_downloads_status"), "photo_downloads", ["status"], unique=False)
    op.create_index(op.f("ix_photo_downloads_sha256"), "photo_downloads", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_photo_downloads_sha256"), table_name="photo_downloads")
    op.drop_index(op.f("ix_photo_downloads_status"), table_name="photo_downloads")
    op.drop_index(op.f("ix_photo_downloads_issue_id"), table_name="photo_downloads")
    op.drop_table("photo_downloads")
