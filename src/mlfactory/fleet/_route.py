"""Routing: score each record with its segment's model, the fallback for the rest.

Pure compute over loaded estimators (training's fleet test score, the service, batch scoring all
use :func:`route_scores`); where the models come from is the caller's business (a dict, or the
service's bounded LRU cache of verified files).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlfactory.exceptions import DataError
from mlfactory.fleet._plan import FALLBACK_KEY, segment_keys

__all__ = ["LRUModels", "Routed", "route_scores"]


@dataclass
class Routed:
    """Outputs in input order, and which model scored each record (a segment key or fallback)."""

    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any]
    routes: list[str]  # per record: the segment key of its model, or FALLBACK_KEY


def _proba_aligned(model: Any, X: pd.DataFrame, classes: list[Any]) -> np.ndarray:
    """``predict_proba`` with columns in the fleet's class order (a missing class scores 0)."""
    raw = np.asarray(model.predict_proba(X))
    own = list(getattr(model, "classes_", classes))
    if own == classes:
        return raw
    out = np.zeros((len(X), len(classes)))
    position = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(own):
        out[:, position[c]] = raw[:, j]
    return out


def _score(model: Any, rows: pd.DataFrame, classes: list[Any], proba: bool):
    """Labels (and aligned probabilities): a pipeline's preprocessing runs once for both."""
    final, Z = model, rows
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        final, Z = model.steps[-1][1], model[:-1].transform(rows)
    labels = np.asarray(final.predict(Z))
    if proba and classes and hasattr(final, "predict_proba"):
        return labels, _proba_aligned(final, Z, classes)
    return labels, None


def route_scores(
    frame: pd.DataFrame,
    by: list[str],
    get_model: Callable[[str], Any | None],
    *,
    classes: list[Any],
    feature_names: list[str] | None = None,
    keys: pd.Series | None = None,
    proba: bool = True,
) -> Routed:
    """Score ``frame`` grouped by segment key; ``get_model(key)`` gives a model or ``None``.

    ``None`` sends the group to ``get_model(FALLBACK_KEY)``; if that is ``None`` too the records
    are refused with a :class:`DataError` naming the segments (``fallback = "none"``).
    """
    if keys is None:
        keys = segment_keys(frame, by)
    key_array = np.asarray(keys, dtype=object)
    columns = feature_names or [c for c in frame.columns]
    X = frame[columns] if feature_names else frame
    n = len(frame)
    predictions: np.ndarray | None = None
    probabilities = np.zeros((n, len(classes))) if (classes and proba) else None
    routes = np.empty(n, dtype=object)
    groups = pd.Series(np.arange(n)).groupby(key_array, sort=False).indices
    unrouted: list[str] = []
    by_model: dict[str, list[np.ndarray]] = {}
    models: dict[str, Any] = {}
    for key, positions in groups.items():
        model = get_model(key)
        target = key
        if model is None:
            target = FALLBACK_KEY
            model = models.get(FALLBACK_KEY) or get_model(FALLBACK_KEY)
            if model is None:
                unrouted.append(str(key))
                continue
        models[target] = model
        by_model.setdefault(target, []).append(positions)
    if unrouted:
        shown = ", ".join(repr(k) for k in sorted(unrouted)[:10])
        raise DataError(
            f"no model for segment(s) {shown}"
            + (f" (+{len(unrouted) - 10} more)" if len(unrouted) > 10 else "")
            + " and the fleet has no fallback (segments.fallback = 'none')"
        )
    if len(by_model) == 1:  # one model scores every record (a one-segment request): no copies
        target = next(iter(by_model))
        labels, probs = _score(models[target], X, list(classes), probabilities is not None)
        if probabilities is not None and probs is not None:
            probabilities = probs
        return Routed(labels, probabilities, list(classes), [target] * n)
    for target, parts in by_model.items():
        positions = np.concatenate(parts) if len(parts) > 1 else parts[0]
        rows = X.iloc[positions]
        labels, probs = _score(models[target], rows, list(classes), probabilities is not None)
        if predictions is None:
            predictions = np.empty(n, dtype=labels.dtype if labels.dtype.kind != "U" else object)
        elif predictions.dtype != labels.dtype and predictions.dtype != object:
            predictions = predictions.astype(np.result_type(predictions.dtype, labels.dtype))
        predictions[positions] = labels
        if probabilities is not None and probs is not None:
            probabilities[positions] = probs
        routes[positions] = target
    if predictions is None:
        predictions = np.empty(0)
    return Routed(predictions, probabilities, list(classes), routes.tolist())


class LRUModels:
    """At most ``size`` loaded models, least recently used evicted first; loads lazily.

    ``load(key)`` returns the model or ``None`` (no model for that key). Thread-safe: requests
    scored in worker threads share it; a key loaded twice at once keeps one copy.
    """

    def __init__(self, load: Callable[[str], Any | None], size: int) -> None:
        if size < 1:
            raise ValueError(f"the model cache holds at least 1 model, got {size}")
        self.load, self.size = load, size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = Lock()
        self.hits = self.misses = self.evictions = 0
        self.load_seconds = 0.0

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        started = time.perf_counter()
        model = self.load(key)
        elapsed = time.perf_counter() - started
        if model is None:
            return None
        with self._lock:
            self.misses += 1
            self.load_seconds += elapsed
            if key not in self._items:
                self._items[key] = model
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
                self.evictions += 1
            return self._items[key]

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)


# Batch scoring on a Dask cluster: the tasks a worker runs (light: no MLflow, no registry) -----


class RoutingEstimator(ABC):
    """``predict``/``predict_proba`` that route each row to its segment's model (``get``)."""

    by: list[str]
    features: list[str]
    classes_: list[Any]

    @abstractmethod
    def get(self, key: str) -> Any | None:
        """The model of segment ``key`` (``FALLBACK_KEY``: the fallback), or None."""

    def route(self, frame: pd.DataFrame, proba: bool = True) -> Routed:
        return route_scores(
            frame, self.by, self.get, classes=self.classes_, feature_names=self.features,
            proba=proba,
        )  # fmt: skip

    def predict(self, frame: pd.DataFrame) -> Any:
        return self.route(frame, proba=False).predictions

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        return self.route(frame).probabilities


class SegmentModels(RoutingEstimator):
    """The segment models one worker holds, as one estimator: ``predict``/``predict_proba``
    route each row to its segment's model, rows of a segment without one to the fallback."""

    def __init__(
        self, by: list[str], features: list[str], classes: list[Any], models: dict[str, Any]
    ) -> None:
        self.by, self.features, self.classes_, self.models = by, features, classes, models

    def get(self, key: str) -> Any | None:
        return self.models.get(key)


def read_keyed(part: Any, by: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a partition (a frame or a loader of one) and key each row by its segment."""
    frame = part() if callable(part) else part
    return frame, np.asarray(segment_keys(frame, by), dtype=object)


def unique_keys(split: tuple[pd.DataFrame, np.ndarray]) -> list[str]:
    """The segment keys of a keyed partition, in order of first appearance."""
    return [str(k) for k in pd.unique(split[1])]


def take_rows(
    split: tuple[pd.DataFrame, np.ndarray], keys: list[str]
) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows of a keyed partition whose segment is one of ``keys``, with their positions."""
    frame, row_keys = split
    positions = np.flatnonzero(np.isin(row_keys, np.asarray(keys, dtype=object)))
    return positions, frame.iloc[positions]


def score_rows(
    piece: tuple[np.ndarray, pd.DataFrame],
    by: list[str],
    features: list[str],
    classes: list[Any],
    models: dict[str, Any],
    score: Callable[[pd.DataFrame, Any], pd.DataFrame],
) -> tuple[np.ndarray, pd.DataFrame]:
    """Score a piece of a partition with the segment models this worker holds."""
    from mlfactory._worker import fit_friendly_allocator

    positions, frame = piece
    with fit_friendly_allocator():
        return positions, score(frame, SegmentModels(by, features, classes, models))


def assemble(
    pieces: list[tuple[np.ndarray, pd.DataFrame]], index: int, folder: str | None
) -> pd.DataFrame | int:
    """A partition's scored pieces back in input order; written as its part file into
    ``folder`` (its row count returned) or returned to be written."""
    import os

    from mlfactory._batch_tasks import part_name

    positions = np.concatenate([p for p, _ in pieces])
    frame = (
        pd.concat([f for _, f in pieces], ignore_index=True) if len(pieces) > 1 else pieces[0][1]
    )
    result = frame.iloc[np.argsort(positions, kind="stable")].reset_index(drop=True)
    if folder is None:
        return result
    result.to_parquet(os.path.join(folder, part_name(index)), index=False)
    return len(result)
