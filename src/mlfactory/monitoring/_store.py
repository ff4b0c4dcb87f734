"""The ``drift_reports`` table: one row per drift report, in the settings' database."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlfactory.monitoring._drift import DriftReport
from mlfactory.monitoring._report import _json_default

__all__ = ["DRIFT_REPORTS", "create_drift_reports", "read_drift_reports", "save_drift_report"]

_metadata = sa.MetaData()

DRIFT_REPORTS = sa.Table(
    "drift_reports",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
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
    sa.Column("report", sa.JSON, nullable=False),  # per-feature stats, config, reasons
)


def create_drift_reports(engine: Engine) -> None:
    """Create the table if it does not exist (idempotent)."""
    _metadata.create_all(engine, checkfirst=True)


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
    create_drift_reports(engine)
    query = sa.select(DRIFT_REPORTS).order_by(DRIFT_REPORTS.c.id)
    if model is not None:
        query = query.where(DRIFT_REPORTS.c.model == model)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in DRIFT_REPORTS.columns])
