"""Carry the rows of the old ``prediction_log`` (one row per record) into ``prediction_requests``.

The old layout held one row per scored record (``row_index``, ``inputs`` ``{feature: value}``,
``prediction``, ``probabilities`` ``{class: p}``); the new one holds one row per request with its
records column by column. Records are regrouped by request, in ``row_index`` order, in one
transaction with the drop of the old table, so a crash leaves either layout whole.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD = "prediction_log"
BATCH_REQUESTS = 500


def _as_object(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _request_row(records: list[Any]) -> dict[str, Any]:
    first = records[0]
    inputs: dict[str, list[Any]] = {}
    probabilities: dict[str, list[Any]] | None = None
    predictions = []
    for position, record in enumerate(records):
        values = _as_object(record.inputs) or {}
        for name in list(inputs) + [n for n in values if n not in inputs]:
            inputs.setdefault(name, [None] * position).append(values.get(name))
        predictions.append(_as_object(record.prediction))
        probs = _as_object(record.probabilities)
        if probs is not None:
            probabilities = probabilities or {}
            for label in list(probabilities) + [c for c in probs if c not in probabilities]:
                probabilities.setdefault(label, [None] * position).append(probs.get(label))
    return {
        "request_id": first.request_id,
        "model_name": first.model_name,
        "model_version": first.model_version,
        "received_at": first.received_at,
        "records": len(records),
        "inputs": inputs,
        "predictions": predictions,
        "probabilities": probabilities,
        "latency_ms": first.latency_ms,
    }


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table(OLD):
        return
    metadata = sa.MetaData()
    old = sa.Table(OLD, metadata, autoload_with=bind)
    new = sa.Table("prediction_requests", metadata, autoload_with=bind)
    json_columns = ("inputs", "predictions", "probabilities")
    insert = new.insert().values(
        **{name: sa.bindparam(name, type_=sa.JSON) for name in json_columns}
    )
    order = (
        old.c.model_name,
        old.c.model_version,
        old.c.request_id,
        old.c.received_at,
        old.c.row_index,
    )
    pending: list[dict[str, Any]] = []
    group: list[Any] = []
    key = None
    for record in bind.execute(sa.select(old).order_by(*order)):
        record_key = (
            record.model_name,
            record.model_version,
            record.request_id,
            record.received_at,
        )
        if group and record_key != key:
            pending.append(_request_row(group))
            group = []
        group.append(record)
        key = record_key
        if len(pending) >= BATCH_REQUESTS:
            bind.execute(insert, pending)
            pending = []
    if group:
        pending.append(_request_row(group))
    if pending:
        bind.execute(insert, pending)
    op.drop_table(OLD)


def downgrade() -> None:
    pass  # the old layout is not recreated; its rows live on in prediction_requests
