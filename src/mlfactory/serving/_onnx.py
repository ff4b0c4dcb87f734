"""The compiled inference path in the service: :class:`OnnxPredictor` and the choice of path.

Compilation and verification live in :mod:`mlfactory.compile` (the registry runs them at
promotion); this module loads a version's verified graph (its SHA-256 checked) and serves it with
onnxruntime. Anything without a verified graph is served by scikit-learn, with the reason.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.compile import (
    ONNX_ARTIFACT,
    TOLERANCE,
    Compilation,
    compile_pipeline,
    make_session,
    onnx_artifact_path,
    onnx_feed,
    onnx_feed_from_columns,
)
from mlfactory.logs import get_logger
from mlfactory.registry import LoadedModel
from mlfactory.serving._frame import Batch
from mlfactory.serving._predictor import ScoreResult

__all__ = [
    "ONNX_ARTIFACT",
    "ONNX_TOLERANCE",
    "OnnxCompilation",
    "OnnxPredictor",
    "build_predictor",
    "compile_onnx",
    "onnx_artifact_path",
    "onnx_feed",
    "onnx_feed_from_columns",
]

logger = get_logger(__name__)

# The names this module had when it also compiled (kept for callers of the old API)
ONNX_TOLERANCE = TOLERANCE
OnnxCompilation = Compilation
compile_onnx = compile_pipeline


class OnnxPredictor:
    """Scores with onnxruntime; batches ONNX cannot represent go to scikit-learn."""

    kind = "onnx"

    def __init__(self, loaded: LoadedModel, model_bytes: bytes, fallback: Any) -> None:
        self.loaded = loaded
        self.reason = "verified ONNX graph (" + loaded.info.tags.get("onnx_max_abs_diff", "?")
        self.reason += " max abs difference from scikit-learn)"
        self._session = make_session(model_bytes)
        self._fallback = fallback
        self.classes = fallback.classes
        self._proba = bool(loaded.classes) and len(self._session.get_outputs()) > 1

    def score(self, frame: pd.DataFrame) -> ScoreResult:
        feed = onnx_feed(frame, self.loaded.inputs)
        if feed is None:
            return self._fallback.score(frame)
        return self._run(feed)

    def score_batch(self, batch: Batch) -> ScoreResult:
        feed = onnx_feed_from_columns(batch.columns, self.loaded.inputs)
        if feed is None:
            return self._fallback.score(batch.frame)
        return self._run(feed)

    def _run(self, feed: dict[str, np.ndarray]) -> ScoreResult:
        start = time.perf_counter()
        outputs = self._session.run(None, feed)
        predictions = outputs[0].ravel()
        probabilities = outputs[1] if self._proba else None
        elapsed = (time.perf_counter() - start) * 1000.0
        return ScoreResult(predictions, probabilities, self.classes, elapsed)


def build_predictor(settings: Any, loaded: LoadedModel, *, onnx: bool = True) -> Any:
    """The verified ONNX predictor when the version has one, else scikit-learn with the reason."""
    from mlfactory.registry._compile import load_compiled
    from mlfactory.serving._predictor import SklearnPredictor

    sklearn = SklearnPredictor(loaded)
    if not onnx:
        reason = "ONNX disabled (--no-onnx)"
    else:
        model_bytes, reason = load_compiled(settings, loaded)
        if model_bytes is not None:
            try:
                predictor = OnnxPredictor(loaded, model_bytes, sklearn)
                logger.info("serving %s with ONNX", loaded.ref)
                return predictor
            except Exception as exc:
                reason = f"fallback: cannot load the ONNX graph: {str(exc).strip()[:200]}"
    sklearn.reason = reason
    logger.info("serving %s with scikit-learn: %s", loaded.ref, reason)
    return sklearn
