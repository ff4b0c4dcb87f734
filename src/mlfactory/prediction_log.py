"""The prediction log: every prediction the service makes, for monitoring.

Written by the prediction service (in batches, off the request path, by a writer process) and read
by ``mlfactory monitor model``. One row per scored *request*, its records held column by column:
``inputs`` is ``{feature: [value per record]}``, ``predictions`` a list, ``probabilities``
``{class: [probability per record]}``. A row per record cost 15-30 us of row building, JSON and
SQL per record and could not keep up with the service at 100-row requests (docs/benchmarks.md);
a request's columns serialize in one JSON call. :func:`read_prediction_log` gives one row per
record back, and the layout is plain SQL/JSON for any client (SQLite ``json_each``, PostgreSQL
``json_array_elements``).

Retention (:class:`LogRetention`, from the ``prediction_log_*`` settings; default: 30 days) is
applied by the same writer process, between batches, a few rows per transaction
(:func:`prune_prediction_log`), so the service never waits for it.
"""

from __future__ import annotations

import pickle
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlfactory.db import PREDICTION_REQUESTS, ensure_schema

if TYPE_CHECKING:
    from mlfactory.settings import Settings

__all__ = [
    "PREDICTION_LOG",
    "LogRetention",
    "LoggedRequest",
    "create_prediction_log",
    "insert_prediction_requests",
    "prune_prediction_log",
    "read_logged_probabilities",
    "read_prediction_log",
    "write_log_batches",
]

PREDICTION_LOG = PREDICTION_REQUESTS  # one row per scored request (mlfactory.db._tables)


class LoggedRequest(NamedTuple):
    """One scored request, as the service hands it to the log (a tuple: cheap to pickle)."""

    request_id: str
    model_name: str
    model_version: str
    received_at: datetime
    columns: dict[str, list[Any]]  # {feature: [value per record]}, JSON-safe
    predictions: list[Any]
    probabilities: dict[str, list[float]] | None  # {class: [probability per record]}
    model_ms: float

    @property
    def rows(self) -> int:
        return len(self.predictions)

    def row(self) -> dict[str, Any]:
        """The request as a row of the table."""
        return {
            "request_id": self.request_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "received_at": self.received_at,
            "records": self.rows,
            "inputs": self.columns,
            "predictions": self.predictions,
            "probabilities": self.probabilities,
            "latency_ms": self.model_ms,
        }


def create_prediction_log(engine: Engine) -> None:
    """Bring mlfactory's schema (with ``prediction_requests``) to head before writing."""
    ensure_schema(engine)


def insert_prediction_requests(connection: sa.Connection, requests: list[LoggedRequest]) -> None:
    """Append ``requests`` in the open transaction."""
    if requests:
        connection.execute(PREDICTION_LOG.insert(), [request.row() for request in requests])


@dataclass(frozen=True)
class LogRetention:
    """How long logged requests are kept: by age and/or by count (``None`` = no such limit)."""

    max_age_days: float | None = 30.0
    max_rows: int | None = None  # rows of prediction_requests, i.e. requests
    interval_s: float = 60.0  # between two retention passes
    batch_rows: int = 1000  # rows deleted per transaction

    @classmethod
    def from_settings(cls, settings: Settings) -> LogRetention:
        return cls(
            max_age_days=settings.prediction_log_max_age_days or None,
            max_rows=settings.prediction_log_max_rows or None,
            interval_s=settings.prediction_log_prune_interval_s,
            batch_rows=settings.prediction_log_prune_batch_rows,
        )

    @property
    def active(self) -> bool:
        return bool(self.max_age_days) or bool(self.max_rows)

    def describe(self) -> str:
        limits = []
        if self.max_age_days:
            limits.append(f"older than {self.max_age_days:g} days")
        if self.max_rows:
            limits.append(f"beyond the newest {self.max_rows} requests")
        return " or ".join(limits) or "none"


def prune_prediction_log(
    engine: Engine, retention: LogRetention, now: datetime | None = None
) -> int:
    """Delete at most ``retention.batch_rows`` expired requests in one short transaction.

    Expired: received more than ``max_age_days`` ago, or older than the newest ``max_rows``
    requests (by id: the ids above ``max(id) - max_rows``, at most ``max_rows`` rows, are kept).
    Both lookups walk an index (``received_at``, the primary key). Returns the rows deleted; a
    pass repeats it until it deletes fewer than ``batch_rows``.
    """
    if not retention.active:
        return 0
    table, limit = PREDICTION_LOG, retention.batch_rows
    with engine.begin() as connection:
        expired: set[int] = set()
        if retention.max_age_days:
            cutoff = (now or datetime.now(UTC)) - timedelta(days=retention.max_age_days)
            query = sa.select(table.c.id).where(table.c.received_at < cutoff)
            expired.update(connection.scalars(query.order_by(table.c.received_at).limit(limit)))
        if retention.max_rows:
            newest = connection.scalar(sa.select(sa.func.max(table.c.id)))
            if newest is not None and newest > retention.max_rows:
                query = sa.select(table.c.id).where(table.c.id <= newest - retention.max_rows)
                expired.update(connection.scalars(query.order_by(table.c.id).limit(limit)))
        if not expired:
            return 0
        doomed = sorted(expired)[:limit]
        connection.execute(table.delete().where(table.c.id.in_(doomed)))
    return len(doomed)


def _prune_step(engine: Engine, retention: LogRetention) -> tuple[int, bool]:
    """One batch of a retention pass: ``(rows deleted, more may be due)``; never raises."""
    try:
        deleted = prune_prediction_log(engine, retention)
    except Exception:  # the database may be down or busy: the next pass tries again
        return 0, False
    return deleted, deleted >= retention.batch_rows


def write_log_batches(
    connection: Connection, database_url: str, retention: LogRetention | None = None
) -> None:
    """Body of the prediction-log writer process: insert each batch it receives, say how it went.

    Receives pickled lists of :class:`LoggedRequest` (an empty message means "finish"), inserts
    each list in one transaction and answers ``("written" | "dropped", records, reason)``. It
    runs in its own process so that JSON and SQL never compete with the prediction service for
    its interpreter (see :class:`mlfactory.serving.PredictionLogWriter`).

    With an active ``retention`` it also prunes the log: at start and every
    ``retention.interval_s``, one small transaction at a time, serving any batch that arrives in
    between first; after a pass that deleted rows it sends ``("pruned", rows, description)``.
    """
    from mlfactory.db import get_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the service, which tells us
    engine = get_engine(database_url)
    table_ready = False
    try:  # ready before the first batch arrives; retried with each batch otherwise
        create_prediction_log(engine)
        table_ready = True
    except Exception:
        pass
    pruning = retention is not None and retention.active
    next_pass, pruned = time.monotonic(), 0  # a first pass at start
    while True:
        try:
            if pruning and not connection.poll(max(0.0, next_pass - time.monotonic())):
                assert retention is not None
                deleted, more = _prune_step(engine, retention) if table_ready else (0, False)
                pruned += deleted
                if not more:  # the pass is over
                    if pruned:
                        connection.send(("pruned", pruned, retention.describe()))
                    next_pass, pruned = time.monotonic() + retention.interval_s, 0
                continue
            payload = connection.recv_bytes()
        except (EOFError, OSError):  # the service went away
            return
        if not payload:
            connection.send(("finished", 0, ""))
            return
        batch: list[LoggedRequest] = pickle.loads(payload)  # from our parent process only
        count = sum(item.rows for item in batch)
        try:
            if not table_ready:
                create_prediction_log(engine)
                table_ready = True
            with engine.begin() as transaction:
                insert_prediction_requests(transaction, batch)
            connection.send(("written", count, ""))
        except Exception as exc:  # the database may be down: the service counts and warns
            text = str(getattr(exc, "orig", None) or exc).strip()
            connection.send(("dropped", count, text.splitlines()[0] if text else repr(exc)))


def _logged_requests(
    engine: Engine,
    model_name: str,
    since: datetime | None,
    until: datetime | None,
    model_version: str | None,
    columns: list[sa.Column],
) -> list[Any]:
    table = PREDICTION_LOG
    query = sa.select(table.c.records, *columns).where(table.c.model_name == model_name)
    if since is not None:
        query = query.where(table.c.received_at >= since)
    if until is not None:
        query = query.where(table.c.received_at < until)
    if model_version is not None:
        query = query.where(table.c.model_version == model_version)
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(table.name):  # readers never create it
            return []
        return list(connection.execute(query.order_by(table.c.id)).all())


def read_prediction_log(
    engine: Engine,
    model_name: str,
    since: datetime | None = None,
    until: datetime | None = None,
    model_version: str | None = None,
) -> pd.DataFrame:
    """Logged records of one model (optionally a time window and version), one row per record:
    request_id, model_version, received_at, row_index, prediction and one column per input."""
    table = PREDICTION_LOG
    requests = _logged_requests(
        engine, model_name, since, until, model_version,
        [table.c.request_id, table.c.model_version, table.c.received_at, table.c.inputs,
         table.c.predictions],
    )  # fmt: skip
    if not requests:
        return pd.DataFrame()
    counts = np.array([request.records for request in requests])
    names = list(dict.fromkeys(chain.from_iterable(request.inputs for request in requests)))
    meta = pd.DataFrame(
        {
            "request_id": np.repeat([r.request_id for r in requests], counts),
            "model_version": np.repeat([r.model_version for r in requests], counts),
            "received_at": pd.to_datetime([r.received_at for r in requests]).repeat(counts),
            "row_index": np.concatenate([np.arange(n) for n in counts]),
            "prediction": list(chain.from_iterable(r.predictions for r in requests)),
        }
    )
    inputs = pd.DataFrame(
        {
            name: list(
                chain.from_iterable(r.inputs.get(name, [None] * r.records) for r in requests)
            )
            for name in names
        }
    )
    return pd.concat([meta, inputs], axis=1)


def read_logged_probabilities(
    engine: Engine,
    model_name: str,
    model_version: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame | None:
    """Logged class probabilities (one row per record, one column per class), or None when a
    request of the window has none (a regressor, or a classifier without predict_proba)."""
    requests = _logged_requests(
        engine, model_name, since, until, model_version, [PREDICTION_LOG.c.probabilities]
    )
    if not requests or any(request.probabilities is None for request in requests):
        return None
    classes = list(requests[0].probabilities)
    return pd.DataFrame(
        {
            str(label): list(chain.from_iterable(r.probabilities[label] for r in requests))
            for label in classes
        }
    )
