"""Score one partition: a pure function of a DataFrame and a fitted model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlfactory.exceptions import DataError
from mlfactory.registry import InputColumn

__all__ = ["RESERVED_COLUMNS", "check_columns", "output_columns", "score_partition"]

RESERVED_COLUMNS = ("prediction", "model_version", "scored_at")


def _proba_name(label: Any) -> str:
    return f"proba_{label}"


def output_columns(key_columns: Sequence[str], classes: Sequence[Any]) -> list[str]:
    """Column order of every output partition."""
    return [
        *key_columns,
        "prediction",
        *(_proba_name(c) for c in classes),
        "model_version",
        "scored_at",
    ]


def check_columns(
    available: Sequence[str], inputs: Sequence[InputColumn], key_columns: Sequence[str], where: str
) -> None:
    """Raise :class:`DataError` naming every model or key column ``available`` lacks."""
    have = set(available)
    missing = [c for c in inputs if c.required and c.name not in have]
    if missing:
        shown = ", ".join(f"{c.name!r} ({c.type})" for c in missing)
        raise DataError(
            f"{where} lacks the model input column(s) {shown}; it has: {', '.join(available)}"
        )
    absent = [k for k in key_columns if k not in have]
    if absent:
        raise DataError(
            f"--key-columns {', '.join(absent)} not found in {where}; it has: "
            f"{', '.join(available)}"
        )
    clash = [k for k in key_columns if k in RESERVED_COLUMNS or k.startswith("proba_")]
    if clash:
        raise DataError(
            f"key column(s) {', '.join(clash)} collide with output columns "
            f"({', '.join(RESERVED_COLUMNS)}, proba_*); rename them in the input"
        )


def score_partition(
    frame: pd.DataFrame,
    model: Any,
    inputs: Sequence[InputColumn],
    key_columns: Sequence[str],
    classes: Sequence[Any],
    model_version: str,
    scored_at: datetime,
) -> pd.DataFrame:
    """Key columns + ``prediction`` (+ ``proba_<class>``) + ``model_version`` + ``scored_at``.

    Preprocessing runs once per partition; ``predict`` and ``predict_proba`` share its output,
    so the values equal ``model.predict(X)`` / ``model.predict_proba(X)`` exactly.
    """
    features = pd.DataFrame({c.name: frame.get(c.name, np.nan) for c in inputs}, index=frame.index)
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        transformed, final = model[:-1].transform(features), model.steps[-1][1]
    else:
        transformed, final = features, model
    out = {key: frame[key].to_numpy() for key in key_columns}
    out["prediction"] = np.asarray(final.predict(transformed))
    if classes:  # the caller passes classes only when the estimator has predict_proba
        proba = final.predict_proba(transformed)
        for position, label in enumerate(classes):
            out[_proba_name(label)] = proba[:, position]
    result = pd.DataFrame(out)
    result["model_version"] = pd.Series(str(model_version), index=result.index, dtype="str")
    result["scored_at"] = pd.Timestamp(scored_at)
    return result
