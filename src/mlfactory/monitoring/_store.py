"""The ``drift_reports`` table: one row per drift report, in the settings' database."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlfactory.db import DRIFT_REPORTS, ensure_schema
from mlfactory.monitoring._drift import DriftReport
from mlfactory.monitoring._report import _json_default

__all__ = ["DRIFT_REPORTS", "create_drift_reports", "read_drift_reports", "save_drift_report"]


def create_drift_reports(engine: Engine) -> None:
    """Bring mlfactory's schema (with ``drift_reports``) to head before writing."""
    ensure_schema(engine)


def save_drift_report(engine: Engine, report: DriftReport) -> int:
    """Insert one row for ``report`` in one transaction; return its id."""
    create_drift_reports(engine)
    document = json.loads(json.dumps(report.to_dict(), default=_json_default))
    row = {
        "created_at": report.created_at,
        "model": report.model,
        "reference": report.reference,
        "current": report.current,
        "window_start": report.window_start,
        "window_end": report.window_end,
        "drifted": report.drifted,
        "share_drifted": report.share_drifted,
        "n_features": len(report.features),
        "n_drifted": len(report.drifted_features),
        "n_reference": report.n_reference,
        "n_current": report.n_current,
        "report": document,
    }
    with engine.begin() as connection:
        result = connection.execute(DRIFT_REPORTS.insert().values(**row))
        return int(result.inserted_primary_key[0])


def read_drift_reports(engine: Engine, model: str | None = None) -> pd.DataFrame:
    """Stored reports (newest last), optionally of one model."""
    query = sa.select(DRIFT_REPORTS).order_by(DRIFT_REPORTS.c.id)
    if model is not None:
        query = query.where(DRIFT_REPORTS.c.model == model)
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(DRIFT_REPORTS.name):  # readers never create it
            rows = []
        else:
            rows = connection.execute(query).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in DRIFT_REPORTS.columns])
