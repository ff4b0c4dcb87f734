"""Prediction logging off the request path: a bounded queue drained by a background thread.

Requests only enqueue (never block, never wait for the database). The writer thread turns each
scored request into rows and inserts them in batches, one transaction per batch. When the queue
is full or the database does not answer, records are dropped and counted, and serving goes on.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlfactory.logs import get_logger
from mlfactory.prediction_log import PREDICTION_LOG, create_prediction_log
from mlfactory.serving._metrics import Counter

__all__ = ["LoggedRequest", "PredictionLogWriter"]

logger = get_logger(__name__)


@dataclass(frozen=True)
class LoggedRequest:
    """One scored request, as the service hands it to the log."""

    request_id: str
    model_name: str
    model_version: str
    received_at: datetime
    columns: dict[str, list[Any]]
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None
    model_ms: float

    @property
    def rows(self) -> int:
        return len(self.predictions)

    def records(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        values = list(zip(*self.columns.values(), strict=True))
        return [
            {
                "request_id": self.request_id,
                "model_name": self.model_name,
                "model_version": self.model_version,
                "received_at": self.received_at,
                "row_index": i,
                "inputs": dict(zip(names, values[i], strict=True)),
                "prediction": self.predictions[i],
                "probabilities": self.probabilities[i] if self.probabilities else None,
                "latency_ms": self.model_ms,
            }
            for i in range(self.rows)
        ]


class PredictionLogWriter:
    """Append scored records to ``prediction_log`` in batches from a daemon thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        written: Counter,
        dropped: Counter,
        max_queue_rows: int = 50_000,
        batch_rows: int = 500,
        flush_interval_s: float = 0.5,
    ) -> None:
        self.engine = engine
        self.written, self.dropped = written, dropped
        self.max_queue_rows, self.batch_rows = max_queue_rows, batch_rows
        self.flush_interval_s = flush_interval_s
        self._queue: queue.SimpleQueue[LoggedRequest | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._table_ready = False
        self._last_error = 0.0

    @property
    def pending_rows(self) -> int:
        return self._pending

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, item: LoggedRequest) -> bool:
        """Queue a request's records; False (and counted as dropped) when the queue is full."""
        with self._lock:
            if self._pending + item.rows > self.max_queue_rows:
                self.dropped.inc(item.rows)
                return False
            self._pending += item.rows
        self._queue.put(item)
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued and stop the thread (waits at most ``timeout_s``)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("prediction log: %d rows still queued at shutdown", self._pending)
        self._thread = None

    def _run(self) -> None:
        try:
            self._ensure_table()
        except Exception as exc:  # retried at each flush; serving goes on meanwhile
            logger.warning("prediction log: table not ready yet (%s)", _reason(exc))
        batch: list[LoggedRequest] = []
        rows = 0
        deadline = time.monotonic() + self.flush_interval_s
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = ...
            if item is None:
                self._flush(batch)
                return
            if item is not ...:
                batch.append(item)
                rows += item.rows
            if rows >= self.batch_rows or time.monotonic() >= deadline:
                self._flush(batch)
                batch, rows = [], 0
                deadline = time.monotonic() + self.flush_interval_s

    def _ensure_table(self) -> None:
        if self._table_ready:
            return
        try:
            create_prediction_log(self.engine)
        except Exception:  # another process may have created it between check and create
            if not sa.inspect(self.engine).has_table(PREDICTION_LOG.name):
                raise
        self._table_ready = True

    def _flush(self, batch: list[LoggedRequest]) -> None:
        if not batch:
            return
        count = sum(item.rows for item in batch)
        try:
            records = [record for item in batch for record in item.records()]
            self._ensure_table()
            with self.engine.begin() as connection:
                connection.execute(PREDICTION_LOG.insert(), records)
            self.written.inc(count)
        except Exception as exc:  # the database may be down: count, warn now and then, go on
            self.dropped.inc(count)
            now = time.monotonic()
            if now - self._last_error > 30.0:
                self._last_error = now
                logger.warning("prediction log: dropped %d records (%s)", count, _reason(exc))
        finally:
            with self._lock:
                self._pending -= count


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
