"""Plain SQL tables of results beside MLflow's, so analysts can query them with any SQL client.

``cv_fold_results``: one row per (run, candidate, fold, metric) with train and validation scores.
``tuning_results``: one row per (run, candidate, metric) with mean/std and the candidate's status.
Rows are appended in one transaction per call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = [
    "CV_FOLD_RESULTS",
    "TUNING_RESULTS",
    "append_rows",
    "create_results_tables",
    "read_table",
]

metadata = sa.MetaData()

CV_FOLD_RESULTS = sa.Table(
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
)

TUNING_RESULTS = sa.Table(
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
)


def create_results_tables(engine: Engine) -> None:
    """Create the results tables if they do not exist (idempotent)."""
    metadata.create_all(engine, checkfirst=True)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and pd.isna(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def params_json(params: dict[str, Any]) -> str:
    """Stable JSON text of a candidate's parameters (estimators shown by their repr)."""
    return json.dumps({k: _clean(v) for k, v in sorted(params.items())}, default=repr)


def append_rows(engine: Engine, table: sa.Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` in one transaction; all or nothing."""
    if not rows:
        return 0
    now = datetime.now(UTC)
    cleaned = [{"recorded_at": now, **{k: _clean(v) for k, v in row.items()}} for row in rows]
    with engine.begin() as connection:
        connection.execute(table.insert(), cleaned)
    return len(cleaned)


def read_table(engine: Engine, table: sa.Table, run_id: str | None = None) -> pd.DataFrame:
    """The table's rows (optionally one run's) as a DataFrame."""
    query = sa.select(table)
    if run_id is not None:
        query = query.where(table.c.run_id == run_id)
    with engine.connect() as connection:
        return pd.read_sql(query.order_by(table.c.id), connection)
