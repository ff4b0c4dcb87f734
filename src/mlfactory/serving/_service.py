"""The service's state: the live predictor, atomic reload, scoring with metrics and logging."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import Model

from mlfactory.db import get_engine
from mlfactory.logs import get_logger
from mlfactory.registry import ModelRef, load_model, resolve_version
from mlfactory.serving._errors import PayloadError, ReloadConflict, ServiceNotReady
from mlfactory.serving._frame import Batch, build_frame
from mlfactory.serving._metrics import ServiceMetrics
from mlfactory.serving._microbatch import DEFAULT_BATCH_MAX_WAIT_MS, MicroBatcher
from mlfactory.serving._onnx import build_predictor
from mlfactory.serving._predictor import Predictor, ScoreResult
from mlfactory.serving._predlog import LoggedRequest, LogRetention, PredictionLogWriter
from mlfactory.settings import Settings
from mlfactory.tracking import open_tracking

__all__ = [
    "FALLBACK_BATCH_MAX_SIZE",
    "INLINE_MAX_ROWS",
    "ModelService",
    "Scored",
    "ServeOptions",
]

logger = get_logger(__name__)

INLINE_MAX_ROWS = 256
FALLBACK_BATCH_MAX_SIZE = 64
"""Rows per combined call on the scikit-learn path when micro-batching is left at its default."""
"""Requests up to this many rows are scored on the event loop when the ONNX path is live."""


@dataclass(frozen=True)
class ServeOptions:
    """How the service runs; every field has a safe default."""

    allow_pickle: bool = False
    allow_unverified: bool = False
    max_batch_rows: int = 10_000
    reload_interval_s: float | None = None
    log_predictions: bool = True
    log_db_url: str | None = None  # default: the settings' database
    log_queue_rows: int = 50_000
    log_batch_rows: int = 500
    log_flush_interval_s: float = 0.5
    # micro-batching: rows per combined call; 0 = off; None (default): the scikit-learn path
    # scores together what queues while a call runs (FALLBACK_BATCH_MAX_SIZE rows, no waiting)
    batch_max_size: int | None = None
    batch_max_wait_ms: float = DEFAULT_BATCH_MAX_WAIT_MS
    onnx: bool = False  # serve the version's verified ONNX graph when it has one (opt-in)
    fleet_cache_size: int = 50  # a fleet: segment models kept loaded at most (LRU)


@dataclass
class Scored:
    """A scored request: the validated batch, the model's result, JSON-ready outputs."""

    batch: Batch
    result: ScoreResult
    predictor: Predictor
    predictions: list[Any]

    @cached_property
    def probabilities(self) -> list[dict[str, float]] | None:
        """``{class: probability}`` per record (only ``/predict`` answers with them)."""
        return _probabilities(self.result)


def _warm_up(predictor: Predictor) -> None:
    """Score the model's logged input example once, so the first request is not the slow one."""
    path = predictor.loaded.path
    try:
        example = Model.load(str(path)).load_input_example(str(path))
        if isinstance(example, pd.DataFrame) and len(example):
            predictor.score(example)
    except Exception as exc:  # no or unusable example: the first request warms up instead
        logger.debug("no warm-up for %s: %s", predictor.loaded.ref, exc)


def _check_finite(result: ScoreResult) -> None:
    """Inputs far outside the training range can overflow the model: a 422, never a 500."""
    outputs = [result.probabilities] if result.probabilities is not None else []
    if result.predictions.dtype.kind == "f":
        outputs.append(result.predictions)
    for output in outputs:
        finite = np.isfinite(output)
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            raise PayloadError(
                f"row {row}: the model's output is not finite for these values (far outside "
                "the range it was trained on?)"
            )


def _probabilities(result: ScoreResult) -> list[dict[str, float]] | None:
    if result.probabilities is None:
        return None
    keys = [str(c) for c in result.classes]
    return [dict(zip(keys, row, strict=True)) for row in result.probabilities.tolist()]


def _probability_columns(result: ScoreResult) -> dict[str, list[float]] | None:
    if result.probabilities is None:
        return None
    return {str(c): result.probabilities[:, k].tolist() for k, c in enumerate(result.classes)}


class ModelService:
    """Holds the predictor behind one reference that reload swaps atomically."""

    def __init__(self, settings: Settings, ref: ModelRef, options: ServeOptions) -> None:
        self.settings, self.ref, self.options = settings, ref, options
        self.metrics = ServiceMetrics()
        self.predictor: Predictor | None = None
        self.loaded_at: datetime | None = None
        self.log: PredictionLogWriter | None = None
        self.batcher: MicroBatcher | None = None
        self._cache = Path(tempfile.mkdtemp(prefix="mlfactory-serve-"))
        self._reload_lock = asyncio.Lock()
        self._count_lock = threading.Lock()

    # Lifecycle -------------------------------------------------------------------------------
    def _prepare(self, version_hint: str = "") -> Predictor:
        """Download, verify, load and warm up a version (in a worker thread, before any swap)."""
        target = self._cache / f"v{version_hint or 'current'}-{datetime.now().timestamp():.6f}"
        from mlfactory.fleet._serve import fleet_predictor  # a fleet routes records by segment

        fleet = fleet_predictor(self.settings, self.ref, target, self.options.fleet_cache_size)
        if fleet is not None:
            return fleet
        loaded = load_model(
            self.settings,
            self.ref,
            allow_pickle=self.options.allow_pickle,
            allow_unverified=self.options.allow_unverified,
            cache_dir=target,
        )
        predictor = build_predictor(self.settings, loaded, onnx=self.options.onnx)
        _warm_up(predictor)
        return predictor

    def _install(self, predictor: Predictor) -> None:
        info = predictor.loaded.info
        self.predictor = predictor  # one reference swap: in-flight requests keep the old one
        self.loaded_at = datetime.now(UTC)
        self.metrics.model_info.clear()
        self.metrics.model_info.set(1, info.name, info.version, predictor.kind)

    async def start(self) -> None:
        """Load the model (in a thread) and start the prediction log writer."""
        self._install(await asyncio.to_thread(self._prepare))
        size = self.options.batch_max_size
        if size is None:  # scikit-learn path only: batch what waits, never wait for company
            self.batcher = MicroBatcher(FALLBACK_BATCH_MAX_SIZE, max_wait_ms=0.0)
        elif size > 1:
            self.batcher = MicroBatcher(size, self.options.batch_max_wait_ms)
        if self.batcher is not None:
            self.batcher.start()
        if self.options.log_predictions:
            url = self.options.log_db_url or self.settings.database_url
            self.log = PredictionLogWriter(
                get_engine(url),
                written=self.metrics.logged,
                dropped=self.metrics.dropped,
                max_queue_rows=self.options.log_queue_rows,
                batch_rows=self.options.log_batch_rows,
                flush_interval_s=self.options.log_flush_interval_s,
                retention=LogRetention.from_settings(self.settings),
            )
            self.log.start()

    async def stop(self) -> None:
        """Flush the prediction log and remove downloaded model files."""
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)
        if self.log is not None:
            await asyncio.to_thread(self.log.close)
        shutil.rmtree(self._cache, ignore_errors=True)

    def current(self) -> Predictor:
        predictor = self.predictor
        if predictor is None:
            raise ServiceNotReady("the model is not loaded yet; retry shortly")
        return predictor

    async def reload(self) -> tuple[str, str]:
        """Re-resolve the reference; load a new version fully, then swap. (old, new) versions."""
        async with self._reload_lock:
            old = self.current()
            previous = old.loaded.info.version
            try:
                info = await asyncio.to_thread(
                    lambda: resolve_version(open_tracking(self.settings), self.ref)
                )
                if info.version == previous:
                    self.metrics.reloads.inc(1, "unchanged")
                    return previous, previous
                new = await asyncio.to_thread(self._prepare, info.version)
                loaded = new.loaded
                if loaded.inputs != old.loaded.inputs:
                    raise ReloadConflict(
                        f"version {loaded.info.version} of {loaded.info.name} has a different "
                        f"input schema than version {previous}; restart the service to serve it"
                    )
            except Exception:
                self.metrics.reloads.inc(1, "error")
                raise
            self._install(new)
            self.metrics.reloads.inc(1, "changed")
            logger.info("serving %s version %s (was %s)", self.ref, loaded.info.version, previous)
            return previous, loaded.info.version

    async def poll(self, interval_s: float) -> None:
        """Reload every ``interval_s`` seconds until cancelled; errors are logged, not fatal."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("reload of %s failed: %s", self.ref, exc)

    # Scoring ---------------------------------------------------------------------------------
    def scores_inline(self, rows: int) -> bool:
        """Whether a request of about ``rows`` rows is scored on the event loop itself.

        A verified ONNX graph scores a small request in well under a millisecond: handing it to
        a worker thread costs more than that, and 16 threads taking turns at the GIL made the
        p99 latency 10x the p50. Slow paths (scikit-learn, micro-batching, big requests) still
        go to threads, so the loop stays responsive.
        """
        predictor = self.predictor
        return (
            predictor is not None
            and predictor.kind == "onnx"
            and not self._batched(predictor)
            and rows <= INLINE_MAX_ROWS
        )

    def _batched(self, predictor: Predictor) -> bool:
        """Whether requests to ``predictor`` go through the micro-batcher: always when it was
        asked for, else (the default) only on the scikit-learn path."""
        if self.batcher is None:
            return False
        return self.options.batch_max_size is not None or predictor.kind == "sklearn"

    def score_columns(self, raw: dict[str, Any], request_id: str) -> Scored:
        """Validate, score (a DataFrame only if the path needs one), count, queue for the log.

        Synchronous: called on the event loop for small ONNX requests (:meth:`scores_inline`),
        in a worker thread otherwise.
        """
        received = datetime.now(UTC)
        predictor = self.current()
        batch = build_frame(raw, predictor.loaded.inputs, self.options.max_batch_rows)
        try:
            if self.batcher is not None and self._batched(predictor):
                result = self.batcher.score_batch(predictor, batch)
            else:
                result = predictor.score_batch(batch)
        except (ValueError, TypeError) as exc:  # valid types the fitted model still rejects
            raise PayloadError(f"the model could not score this input: {exc}") from None
        _check_finite(result)
        scored = Scored(batch, result, predictor, result.predictions.tolist())
        self._observe(result, scored.predictions)
        if self.log is not None:
            info = predictor.loaded.info
            routes = getattr(result, "routes", None)  # a fleet: which model scored each record
            self.log.submit(
                LoggedRequest(
                    request_id,
                    info.name,
                    info.version,
                    received,
                    batch.columns if routes is None else {**batch.columns, "_model": routes},
                    scored.predictions,
                    _probability_columns(result),
                    result.model_ms,
                )
            )
        return scored

    def _observe(self, result: ScoreResult, predictions: list[Any]) -> None:
        """Rows, model latency, and the predicted classes (or values) of one scored request;
        ``predictions``: the result's predictions as a list (counted without numpy: a request is
        usually one row, where ``np.unique`` cost more than the model)."""
        metrics = self.metrics
        metrics.rows.inc(len(predictions))
        metrics.model_latency.observe(result.model_ms / 1000.0)
        if result.classes:
            for label, count in Counter(predictions).items():
                metrics.classes.inc(count, str(label))
        else:
            metrics.values.observe_many([float(value) for value in predictions])
