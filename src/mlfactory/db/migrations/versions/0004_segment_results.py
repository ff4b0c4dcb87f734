"""Fleets: one row per segment of a fleet training (``segment_results``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "segment_results",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("experiment", sa.String(256), nullable=False),
        sa.Column("segment", sa.String(512), nullable=False),
        sa.Column("segment_values", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("train_rows", sa.Integer, nullable=False),
        sa.Column("test_rows", sa.Integer, nullable=False),
        sa.Column("best_params", sa.Text, nullable=True),
        sa.Column("refit_metric", sa.String(128), nullable=True),
        sa.Column("cv_mean", sa.Float, nullable=True),
        sa.Column("cv_std", sa.Float, nullable=True),
        sa.Column("test_metrics", sa.JSON, nullable=True),
        sa.Column("fallback_test_score", sa.Float, nullable=True),
        sa.Column("model_file", sa.String(512), nullable=True),
        sa.Column("model_sha256", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("child_run_id", sa.String(64), nullable=True),
        sa.Column("fit_seconds", sa.Float, nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_segment_results_run_segment", "segment_results", ["run_id", "segment"])


def downgrade() -> None:
    op.drop_index("ix_segment_results_run_segment", table_name="segment_results")
    op.drop_table("segment_results")
