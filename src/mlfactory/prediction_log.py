"""The prediction log: every prediction the service makes, for monitoring.

Written by the prediction service (in batches, off the request path) and read by
``mlfactory monitor model``. One row per scored record.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["PREDICTION_LOG", "create_prediction_log", "read_prediction_log"]

_metadata = sa.MetaData()

PREDICTION_LOG = sa.Table(
    "prediction_log",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("row_index", sa.Integer, nullable=False),  # position of the record in its request
    sa.Column("inputs", sa.JSON, nullable=False),  # {feature: value}
    sa.Column("prediction", sa.JSON, nullable=False),  # class label or value
    sa.Column("probabilities", sa.JSON, nullable=True),  # {class: probability} for classifiers
    sa.Column("latency_ms", sa.Float, nullable=True),
)


def create_prediction_log(engine: Engine) -> None:
    """Create the table if it does not exist (idempotent)."""
    _metadata.create_all(engine, checkfirst=True)


def read_prediction_log(
    engine: Engine,
    model_name: str,
    since: datetime | None = None,
    until: datetime | None = None,
    model_version: str | None = None,
) -> pd.DataFrame:
    """Logged records of one model (optionally a time window and version), inputs expanded."""
    table = PREDICTION_LOG
    query = sa.select(table).where(table.c.model_name == model_name)
    if since is not None:
        query = query.where(table.c.received_at >= since)
    if until is not None:
        query = query.where(table.c.received_at < until)
    if model_version is not None:
        query = query.where(table.c.model_version == model_version)
    create_prediction_log(engine)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(table.c.id)).mappings().all()
    if not rows:
        return pd.DataFrame()
    inputs = pd.DataFrame([row["inputs"] for row in rows])
    meta = pd.DataFrame(
        {
            "request_id": [row["request_id"] for row in rows],
            "model_version": [row["model_version"] for row in rows],
            "received_at": [row["received_at"] for row in rows],
            "prediction": [row["prediction"] for row in rows],
        }
    )
    return pd.concat([meta, inputs], axis=1)
