"""The factory line's tables: stage records, run locks and the promotion gate's decisions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "line_stage_records",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("line", sa.String(256), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("key_parts", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("line_run_id", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_line_stage_records_line_stage", "line_stage_records", ["line", "stage", "id"]
    )
    op.create_table(
        "line_locks",
        sa.Column("line", sa.String(256), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "promotion_decisions",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("champion_version", sa.String(32), nullable=True),
        sa.Column("line", sa.String(256), nullable=True),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("force_reason", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("heldout_sha256", sa.String(64), nullable=False),
        sa.Column("heldout_rows", sa.Integer, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
    )
    op.create_index("ix_promotion_decisions_decided_at", "promotion_decisions", ["decided_at"])
    op.create_index("ix_promotion_decisions_model", "promotion_decisions", ["model"])


def downgrade() -> None:
    op.drop_table("promotion_decisions")
    op.drop_table("line_locks")
    op.drop_index("ix_line_stage_records_line_stage", table_name="line_stage_records")
    op.drop_table("line_stage_records")
