"""The predictor interface: ``score(frame)`` or ``score_batch(batch)`` -> ``ScoreResult``.

The service only talks to a :class:`Predictor`, so micro-batching or a compiled ONNX path can
replace :class:`SklearnPredictor` without touching the HTTP layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlfactory.registry import LoadedModel
from mlfactory.serving._frame import Batch

__all__ = ["Predictor", "ScoreResult", "SklearnPredictor"]


@dataclass(frozen=True)
class ScoreResult:
    """What one batch scored to: labels or values, class probabilities, time in the model."""

    predictions: np.ndarray
    probabilities: np.ndarray | None  # (rows, classes) for classifiers with predict_proba
    classes: list[Any]
    model_ms: float


class Predictor(Protocol):
    """Anything that scores a validated frame; ``kind`` names the inference path."""

    kind: str
    loaded: LoadedModel
    reason: str  # why this inference path is the live one

    def score(self, frame: pd.DataFrame) -> ScoreResult: ...

    def score_batch(self, batch: Batch) -> ScoreResult:
        """Score a validated request (a path may skip building its DataFrame)."""
        ...


class SklearnPredictor:
    """Scores with the fitted scikit-learn pipeline: preprocessing once, then predict (+proba).

    ``predictions`` are what the estimator's ``predict`` returns, exactly as MLflow's sklearn
    pyfunc does; probabilities come from the same transformed matrix.
    """

    kind = "sklearn"

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.reason = "the fitted scikit-learn pipeline"
        model = loaded.model
        if isinstance(model, Pipeline) and len(model.steps) > 1:
            self._transform = model[:-1].transform
            self._final = model.steps[-1][1]
        else:
            self._transform = None
            self._final = model
        self._proba = loaded.is_classifier and hasattr(self._final, "predict_proba")
        self.classes = [_plain(c) for c in loaded.classes]

    def score_batch(self, batch: Batch) -> ScoreResult:
        return self.score(batch.frame)

    def score(self, frame: pd.DataFrame) -> ScoreResult:
        start = time.perf_counter()
        with np.errstate(all="ignore"):  # extreme inputs: checked for finiteness by the caller
            features = self._transform(frame) if self._transform is not None else frame
            predictions = np.asarray(self._final.predict(features))
            probabilities = self._final.predict_proba(features) if self._proba else None
        elapsed = (time.perf_counter() - start) * 1000.0
        return ScoreResult(predictions, probabilities, self.classes, elapsed)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so labels serialize as JSON."""
    return value.item() if isinstance(value, np.generic) else value
