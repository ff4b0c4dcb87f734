"""Explain one prediction fast: the explainer is built once per (model, background) and cached.

Meant for the prediction service's ``POST /explain``: pass the loaded model, a one-row frame of
model inputs and, for linear and model-agnostic models, a background sample (e.g. the run's
``reference_sample.parquet``; tree models need none).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlfactory.exceptions import DataError
from mlfactory.explain._model import ExplainModel
from mlfactory.explain._shap import ShapExplainer, explainer_kind

__all__ = ["cached_explainer", "clear_explainer_cache", "explain_record"]

_CACHE: weakref.WeakKeyDictionary[Pipeline, dict[tuple, ShapExplainer]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def _pipeline_and_columns(model: Any) -> tuple[Pipeline, list[str]]:
    if isinstance(model, ExplainModel):
        return model.pipeline, model.input_columns
    if isinstance(model, Pipeline):
        return model, [str(c) for c in getattr(model, "feature_names_in_", [])]
    pipeline = getattr(model, "model", None)  # a registry LoadedModel
    if isinstance(pipeline, Pipeline):
        return pipeline, list(getattr(model, "feature_names", []))
    raise DataError(
        f"cannot explain a {type(model).__name__}; expected a fitted Pipeline, an ExplainModel "
        "or a registry LoadedModel"
    )


def _fingerprint(frame: pd.DataFrame | None) -> tuple:
    if frame is None:
        return ()
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return (frame.shape, tuple(map(str, frame.columns)), int(hashed.sum(dtype=np.uint64)))


def cached_explainer(
    pipeline: Pipeline,
    background: pd.DataFrame | None = None,
    *,
    target_class: Any = None,
    seed: int = 0,
) -> ShapExplainer:
    """The explainer of ``pipeline`` for this background, built on first use and then reused."""
    if explainer_kind(pipeline[-1]).value == "tree":
        background = None  # path-dependent tree SHAP ignores it: do not rebuild per background
    key = (_fingerprint(background), repr(target_class), seed)
    with _LOCK:
        per_model = _CACHE.setdefault(pipeline, {})
        explainer = per_model.get(key)
        if explainer is None:
            explainer = ShapExplainer(pipeline, background, target_class=target_class, seed=seed)
            per_model[key] = explainer
    return explainer


def clear_explainer_cache() -> None:
    """Forget every cached explainer."""
    with _LOCK:
        _CACHE.clear()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def explain_record(
    model: Any,
    record_frame: pd.DataFrame,
    top_k: int = 5,
    background: pd.DataFrame | None = None,
    *,
    target_class: Any = None,
) -> dict[str, Any]:
    """SHAP explanation of one row: top-``top_k`` features by |contribution|, JSON-ready.

    Returns ``explainer`` (linear/tree/kernel), ``scale`` (log-odds, probability or prediction),
    ``class`` (explained class, classifiers only), ``base_value``, ``model_output`` (on
    ``scale``; equals ``base_value`` + every contribution), ``prediction`` (``predict``),
    ``contributions`` (feature, value = preprocessed feature value, contribution) and ``rest``
    (the summed contribution of the other features).
    """
    pipeline, columns = _pipeline_and_columns(model)
    if len(record_frame) != 1:
        raise DataError(f"explain_record explains one row; got {len(record_frame)} rows")
    if top_k < 1:
        raise DataError(f"top_k must be at least 1, got {top_k}")
    if columns:
        missing = [c for c in columns if c not in record_frame.columns]
        if missing:
            raise DataError(
                f"record lacks column(s) the model needs: {', '.join(missing)}; "
                f"expected: {', '.join(columns)}"
            )
        record_frame = record_frame[columns]
        if background is not None:
            background = background[[c for c in columns if c in background.columns]]
    explainer = cached_explainer(pipeline, background, target_class=target_class)
    result = explainer.explain(record_frame)
    values = result.values.iloc[0]
    order = values.abs().sort_values(ascending=False, kind="stable").index
    top = list(order[:top_k])
    contributions = [
        {
            "feature": str(name),
            "value": float(result.data.iloc[0][name]),
            "contribution": float(values[name]),
        }
        for name in top
    ]
    return {
        "explainer": result.kind.value,
        "scale": result.scale,
        "class": _plain(result.class_label),
        "base_value": float(result.base_value),
        "model_output": float(result.output[0]),
        "prediction": _plain(pipeline.predict(record_frame)[0]),
        "contributions": contributions,
        "rest": float(values.drop(top).sum()),
    }
