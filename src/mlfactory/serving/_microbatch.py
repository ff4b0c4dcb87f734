"""Micro-batching: concurrent requests scored in one predictor call, answers split back.

Each request is validated on its own before it queues, so a bad request fails alone. One
scoring thread takes the first waiting request, gathers more for up to ``max_wait_ms`` (0: only
those already waiting) or until ``max_rows`` rows are waiting, scores them as one call and hands
each request its slice. A validated request (:meth:`MicroBatcher.score_batch`) queues its typed
columns: the scoring thread joins the lists and builds one DataFrame for the whole micro-batch,
instead of one per request plus a concatenation. Should the combined call fail, every request is
scored alone, so an error stays with the request that caused it. The service turns it on for the
scikit-learn path by default (``FALLBACK_BATCH_MAX_SIZE`` rows, no waiting).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.logs import get_logger
from mlfactory.serving._frame import Batch
from mlfactory.serving._predictor import Predictor, ScoreResult

__all__ = ["DEFAULT_BATCH_MAX_WAIT_MS", "MicroBatcher"]

logger = get_logger(__name__)

DEFAULT_BATCH_MAX_WAIT_MS = 2.0


@dataclass
class _Item:
    predictor: Predictor
    frame: pd.DataFrame | None = None  # a frame to score, or
    batch: Batch | None = None  # a validated request's typed columns
    done: threading.Event = field(default_factory=threading.Event)
    result: ScoreResult | None = None
    error: BaseException | None = None

    @property
    def rows(self) -> int:
        return self.batch.rows if self.batch is not None else len(self.frame)

    @property
    def key(self) -> tuple[Any, ...]:
        """Requests batch together only with the same predictor and the same column dtypes
        (validated requests: the same schema, so the same dtypes once built)."""
        if self.batch is not None:
            return id(self.predictor), "columns", id(self.batch.schema)
        return id(self.predictor), tuple(str(d) for d in self.frame.dtypes)

    def score_alone(self) -> ScoreResult:
        if self.batch is not None:
            return self.predictor.score_batch(self.batch)
        return self.predictor.score(self.frame)


def _slice(result: ScoreResult, start: int, stop: int) -> ScoreResult:
    probabilities = result.probabilities[start:stop] if result.probabilities is not None else None
    return ScoreResult(
        result.predictions[start:stop], probabilities, result.classes, result.model_ms
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from frames with identical columns and dtypes, column by column."""
    first = frames[0]
    columns: dict[str, Any] = {}
    for name in first.columns:
        parts = [f[name].array for f in frames]
        if all(isinstance(p, np.ndarray) for p in parts):
            columns[name] = np.concatenate(parts)
        else:
            columns[name] = pd.concat([f[name] for f in frames], ignore_index=True)
    return pd.DataFrame(columns, columns=first.columns)


def _join(batches: list[Batch]) -> Batch:
    """One validated request from several with the same schema: their column lists joined."""
    first = batches[0]
    columns = {
        name: [value for batch in batches for value in batch.columns[name]]
        for name in first.columns
    }
    return Batch(columns, first.schema, sum(batch.rows for batch in batches))


class MicroBatcher:
    """Scores queued frames in combined calls on one background thread."""

    def __init__(self, max_rows: int, max_wait_ms: float = DEFAULT_BATCH_MAX_WAIT_MS) -> None:
        if max_rows < 2:
            raise ValueError(f"micro-batches need max_rows >= 2, got {max_rows}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.max_rows, self.max_wait_s = max_rows, max_wait_ms / 1000.0
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.batches = 0  # combined calls made (for tests and metrics)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlfactory-microbatch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def score(self, predictor: Predictor, frame: pd.DataFrame) -> ScoreResult:
        """Queue a validated frame and wait for its slice of a combined call (blocking)."""
        if self._thread is None or len(frame) >= self.max_rows:
            return predictor.score(frame)  # large requests gain nothing from waiting
        return self._wait(_Item(predictor, frame=frame))

    def score_batch(self, predictor: Predictor, batch: Batch) -> ScoreResult:
        """Queue a validated request's columns (no DataFrame yet) and wait for its slice."""
        if self._thread is None or batch.rows >= self.max_rows:
            return predictor.score_batch(batch)
        return self._wait(_Item(predictor, batch=batch))

    def _wait(self, item: _Item) -> ScoreResult:
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    # The scoring thread ----------------------------------------------------------------------
    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        items, rows = [first], first.rows
        deadline = time.perf_counter() + self.max_wait_s
        while rows < self.max_rows:
            remaining = deadline - time.perf_counter()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                return items, True
            items.append(item)
            rows += item.rows
        return items, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            items, stopping = self._gather(first)
            groups: dict[tuple[Any, ...], list[_Item]] = {}
            for item in items:
                groups.setdefault(item.key, []).append(item)
            for group in groups.values():
                self._score_group(group)

    def _score_group(self, group: list[_Item]) -> None:
        if len(group) == 1:
            self._score_alone(group[0])
            return
        try:
            predictor = group[0].predictor
            if group[0].batch is not None:
                result = predictor.score_batch(_join([item.batch for item in group]))
            else:
                result = predictor.score(_concat([item.frame for item in group]))
        except Exception:  # one bad request must not fail the others: score each alone
            for item in group:
                self._score_alone(item)
            return
        self.batches += 1
        start = 0
        for item in group:
            stop = start + item.rows
            item.result = _slice(result, start, stop)
            start = stop
            item.done.set()

    @staticmethod
    def _score_alone(item: _Item) -> None:
        try:
            item.result = item.score_alone()
        except BaseException as exc:  # handed to the waiting request
            item.error = exc
        item.done.set()
