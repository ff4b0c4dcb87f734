"""mlfactory's first tables: results, prediction requests, drift reports.

Databases made before migrations existed already hold some of these tables (created ad hoc);
each is created only when absent, so this revision adopts them as they are.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables as this revision knows them (frozen here: later revisions change them)."""
    return [
        sa.Table(
            "cv_fold_results",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.String(64), nullable=False, index=True),
            sa.Column("experiment", sa.String(256), nullable=False),
            sa.Column("cell", sa.String(256), nullable=False),
            sa.Column("candidate", sa.Integer, nullable=False),
            sa.Column("fold", sa.Integer, nullable=False),
            sa.Column("metric", sa.String(128), nullable=False),
            sa.Column("train_score", sa.Float, nullable=True),
            sa.Column("test_score", sa.Float, nullable=True),
            sa.Column("params", sa.Text, nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        ),
        sa.Table(
            "tuning_results",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.String(64), nullable=False, index=True),
            sa.Column("child_run_id", sa.String(64), nullable=True),
            sa.Column("experiment", sa.String(256), nullable=False),
            sa.Column("cell", sa.String(256), nullable=False),
            sa.Column("candidate", sa.Integer, nullable=False),
            sa.Column("metric", sa.String(128), nullable=False),
            sa.Column("mean_test_score", sa.Float, nullable=True),
            sa.Column("std_test_score", sa.Float, nullable=True),
            sa.Column("mean_train_score", sa.Float, nullable=True),
            sa.Column("std_train_score", sa.Float, nullable=True),
            sa.Column("rank", sa.Integer, nullable=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("error", sa.Text, nullable=True),
            sa.Column("mean_fit_time", sa.Float, nullable=True),
            sa.Column("params", sa.Text, nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        ),
        sa.Table(
            "prediction_requests",
            metadata,
            sa.Column("id", _BIG_ID, primary_key=True),
            sa.Column("request_id", sa.String(64), nullable=False, index=True),
            sa.Column("model_name", sa.String(256), nullable=False),
            sa.Column("model_version", sa.String(32), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("records", sa.Integer, nullable=False),
            sa.Column("inputs", sa.JSON, nullable=False),
            sa.Column("predictions", sa.JSON, nullable=False),
            sa.Column("probabilities", sa.JSON, nullable=True),
            sa.Column("latency_ms", sa.Float, nullable=True),
        ),
        sa.Table(
            "drift_reports",
            metadata,
            sa.Column("id", _BIG_ID, primary_key=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("model", sa.String(256), nullable=True, index=True),
            sa.Column("reference", sa.Text, nullable=False),
            sa.Column("current", sa.Text, nullable=False),
            sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
            sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
            sa.Column("drifted", sa.Boolean, nullable=False),
            sa.Column("share_drifted", sa.Float, nullable=False),
            sa.Column("n_features", sa.Integer, nullable=False),
            sa.Column("n_drifted", sa.Integer, nullable=False),
            sa.Column("n_reference", sa.Integer, nullable=False),
            sa.Column("n_current", sa.Integer, nullable=False),
            sa.Column("report", sa.JSON, nullable=False),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in _tables(sa.MetaData()):
        if table.name not in existing:
            table.create(bind)


def downgrade() -> None:
    for name in ("drift_reports", "prediction_requests", "tuning_results", "cv_fold_results"):
        op.drop_table(name)
