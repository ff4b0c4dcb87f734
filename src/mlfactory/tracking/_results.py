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

from mlfactory.db import CV_FOLD_RESULTS, TUNING_RESULTS, ensure_schema

__all__ = [
    "CV_FOLD_RESULTS",
    "TUNING_RESULTS",
    "append_rows",
    "create_results_tables",
    "read_table",
]


def create_results_tables(engine: Engine) -> None:
    """Bring mlfactory's schema to head before writing results (see mlfactory.db)."""
    ensure_schema(engine)


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
    ensure_schema(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), cleaned)
    return len(cleaned)


def read_table(engine: Engine, table: sa.Table, run_id: str | None = None) -> pd.DataFrame:
    """The table's rows (optionally one run's) as a DataFrame."""
    query = sa.select(table)
    if run_id is not None:
        query = query.where(table.c.run_id == run_id)
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(table.name):  # readers never create it
            return pd.DataFrame(columns=[c.name for c in table.columns])
        return pd.read_sql(query.order_by(table.c.id), connection)
