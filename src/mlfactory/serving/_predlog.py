"""Prediction logging off the request path, and out of the service's process.

Requests only append to a list (never block, never wait for the database). A shipper thread
wakes when ``batch_rows`` rows are waiting or every ``flush_interval_s``, pickles the waiting
requests and sends them to a writer process, which builds the rows and inserts them, one
transaction per batch (:func:`mlfactory.prediction_log.write_log_batches`). Building rows, JSON
and SQL in a thread of the service cost it ~30% of its 1-row throughput and half of its 100-row
throughput (the GIL); pickling a batch costs a few microseconds per request. When the queue is
full, the writer is gone or the database does not answer, records are dropped and counted, and
serving goes on. The writer process also applies the log's retention (:class:`LogRetention`)
between batches, in small transactions: the service never waits for it.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Engine

from mlfactory.logs import get_logger
from mlfactory.prediction_log import LoggedRequest, LogRetention, write_log_batches
from mlfactory.serving._metrics import Counter

__all__ = ["LogRetention", "LoggedRequest", "PredictionLogWriter"]

logger = get_logger(__name__)

_ANSWER_POLL_S = 0.05  # how often the shipper reads the writer's answers while some are due


class PredictionLogWriter:
    """Append scored requests to ``prediction_requests`` through a writer process, in batches."""

    def __init__(
        self,
        engine: Engine,
        *,
        written: Counter,
        dropped: Counter,
        max_queue_rows: int = 50_000,
        batch_rows: int = 500,
        flush_interval_s: float = 0.5,
        retention: LogRetention | None = None,
    ) -> None:
        self.engine = engine
        self.retention = retention  # None: the log grows forever
        self.written, self.dropped = written, dropped
        self.max_queue_rows, self.batch_rows = max_queue_rows, batch_rows
        self.flush_interval_s = flush_interval_s
        self._waiting: list[LoggedRequest] = []
        self._pending = 0  # rows waiting here or sent and not yet answered
        self._in_flight: list[int] = []  # rows of each batch sent, oldest first
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._pipe: Any = None
        self._last_error = 0.0
        self.pruned = 0  # requests deleted by retention since start

    @property
    def pending_rows(self) -> int:
        return self._pending

    def start(self) -> None:
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, item: LoggedRequest) -> bool:
        """Queue a request's records; False (and counted as dropped) when the queue is full."""
        with self._lock:
            if self._pending + item.rows > self.max_queue_rows:
                self.dropped.inc(item.rows)
                return False
            self._pending += item.rows
            self._waiting.append(item)
            waiting_rows = self._pending
        if waiting_rows >= self.batch_rows and not self._wake.is_set():
            self._wake.set()
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued, stop the writer process and the thread (at most ``timeout_s``)."""
        if self._thread is None:
            return
        self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("prediction log: %d rows still queued at shutdown", self._pending)
        self._thread = None

    # The shipper thread ------------------------------------------------------------------------
    def _run(self) -> None:
        self._ensure_process()  # now, not at the first batch: starting takes ~1 s
        deadline = time.monotonic() + self.flush_interval_s
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            if self._in_flight:  # answers to read: look again soon
                timeout = min(timeout, _ANSWER_POLL_S)
            woken = self._wake.wait(timeout)
            self._wake.clear()
            closing = self._closing
            if woken or closing or time.monotonic() >= deadline:
                self._ship_waiting()
                deadline = time.monotonic() + self.flush_interval_s
            self._collect(wait_s=0.0)
            if closing:
                self._ship_waiting()
                self._finish()
                return

    def _take(self) -> list[LoggedRequest]:
        with self._lock:
            batch, self._waiting = self._waiting, []
        return batch

    def _ship_waiting(self) -> None:
        for chunk in _chunks(self._take(), self.batch_rows):
            self._ship(chunk)

    def _ensure_process(self) -> bool:
        if self._process is not None and self._process.is_alive():
            return True
        if self._process is not None:  # it died: what it had not answered is lost
            logger.warning("prediction log: writer process exited (%s)", self._process.exitcode)
            self._lose_in_flight()
        context = multiprocessing.get_context("spawn")  # never fork a threaded server
        ours, theirs = context.Pipe()
        url = self.engine.url.render_as_string(hide_password=False)
        process = context.Process(
            target=write_log_batches,
            args=(theirs, url, self.retention),
            name="mlfactory-prediction-log",
        )
        process.daemon = True
        try:
            process.start()
        except Exception as exc:
            self._warn(f"cannot start the writer process: {exc}")
            return False
        theirs.close()
        self._process, self._pipe = process, ours
        return True

    def _ship(self, batch: list[LoggedRequest]) -> None:
        count = sum(item.rows for item in batch)
        try:
            if not self._ensure_process():
                raise ConnectionError("no writer process")
            self._pipe.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            self._in_flight.append(count)
        except Exception as exc:
            self._settle(count, ok=False, reason=str(exc) or type(exc).__name__)

    def _collect(self, wait_s: float) -> bool:
        """Read the writer's answers; True once it said it finished."""
        pipe = self._pipe
        if pipe is None:
            return True
        try:
            while pipe.poll(wait_s):
                status, count, reason = pipe.recv()
                if status == "finished":
                    return True
                if status == "pruned":  # not an answer to a batch
                    self.pruned += count
                    logger.info("prediction log: deleted %d requests %s", count, reason)
                    continue
                if self._in_flight:
                    self._in_flight.pop(0)
                self._settle(count, ok=status == "written", reason=reason)
        except (EOFError, OSError):
            self._lose_in_flight()
            return True
        return False

    def _finish(self) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.send_bytes(b"")
            deadline = time.monotonic() + 10.0
            while not self._collect(wait_s=0.1) and time.monotonic() < deadline:
                if not self._process.is_alive():
                    break
        except OSError:
            pass
        self._lose_in_flight()
        self._process.join(5.0)
        if self._process.is_alive():
            self._process.kill()
        self._pipe.close()
        self._process, self._pipe = None, None

    def _lose_in_flight(self) -> None:
        lost, self._in_flight = sum(self._in_flight), []
        if lost:
            self._settle(lost, ok=False, reason="the writer process stopped before answering")

    def _settle(self, count: int, *, ok: bool, reason: str = "") -> None:
        (self.written if ok else self.dropped).inc(count)
        with self._lock:
            self._pending -= count
        if not ok:
            self._warn(f"dropped {count} records ({reason})")

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_error > 30.0:
            self._last_error = now
            logger.warning("prediction log: %s", message)


def _chunks(items: list[LoggedRequest], rows: int) -> Iterator[list[LoggedRequest]]:
    """Consecutive requests grouped into transactions of about ``rows`` rows."""
    chunk: list[LoggedRequest] = []
    count = 0
    for item in items:
        chunk.append(item)
        count += item.rows
        if count >= rows:
            yield chunk
            chunk, count = [], 0
    if chunk:
        yield chunk
