"""Compile a fitted pipeline to ONNX and verify it against scikit-learn, within 1e-6.

:func:`compile_pipeline` converts (:mod:`mlfactory.compile._convert`) and then scores the
held-out rows with both onnxruntime and scikit-learn: the labels must be equal and every
probability (or regression value) within :data:`TOLERANCE`. The verdict says ``ok`` or
``fallback: reason``; it never raises, so a pipeline that does not compile still promotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.compile._convert import NUMERIC_TYPES, convert, final_step
from mlfactory.schema import InputColumn

__all__ = [
    "ONNX_ARTIFACT",
    "ONNX_PATH",
    "TOLERANCE",
    "Compilation",
    "compile_pipeline",
    "make_session",
    "onnx_artifact_path",
    "onnx_feed",
    "onnx_feed_from_columns",
]

TOLERANCE = 1e-6
"""Largest absolute difference from scikit-learn's probabilities (or values) accepted."""

ONNX_ARTIFACT = "onnx/model.onnx"  # where versions promoted before content addressing keep it
ONNX_PATH = re.compile(r"onnx/(?:[0-9a-f]{16}/)?model\.onnx")
"""The only run-relative paths a version's ``onnx_artifact`` tag may name."""


def onnx_artifact_path(sha256: str) -> str:
    """The run-relative path of the graph whose SHA-256 is ``sha256``."""
    return f"onnx/{sha256[:16]}/model.onnx"


@dataclass(frozen=True)
class Compilation:
    """The verdict of one compilation: ``status`` is ``ok`` or ``fallback: reason``."""

    status: str
    max_abs_diff: float | None
    model_bytes: bytes | None
    rows_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def make_session(model_bytes: bytes) -> Any:
    """An onnxruntime session on one thread (requests are small; threads would fight)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def onnx_feed(frame: pd.DataFrame, inputs: Sequence[InputColumn]) -> dict[str, np.ndarray] | None:
    """Numpy columns for the graph, or ``None`` when a boolean/string column holds nulls
    (ONNX tensors cannot say "missing" there: scikit-learn scores such a batch instead)."""
    feed: dict[str, np.ndarray] = {}
    for column in inputs:
        series = frame[column.name]
        if column.type in NUMERIC_TYPES:
            values = series.to_numpy(dtype="float64", na_value=np.nan)
        elif column.type == "boolean":
            if series.hasnans:
                return None
            values = series.to_numpy(dtype=bool)
        else:
            if series.hasnans:
                return None
            values = series.to_numpy(dtype=object)
        feed[column.name] = values.reshape(-1, 1)
    return feed


def onnx_feed_from_columns(
    columns: dict[str, list[Any]], inputs: Sequence[InputColumn]
) -> dict[str, np.ndarray] | None:
    """:func:`onnx_feed` straight from a request's typed columns, with no DataFrame between."""
    feed: dict[str, np.ndarray] = {}
    for column in inputs:
        values = columns[column.name]
        if column.type in NUMERIC_TYPES:
            array = np.array(values, dtype=np.float64)  # None becomes NaN
        elif any(value is None for value in values):
            return None
        elif column.type == "boolean":
            array = np.array(values, dtype=bool)
        else:
            array = np.array(values, dtype=object)
        feed[column.name] = array.reshape(-1, 1)
    return feed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def compile_pipeline(
    model: Any, inputs: Sequence[InputColumn], held_out: pd.DataFrame
) -> Compilation:
    """Convert ``model`` to ONNX and verify it on ``held_out`` rows; never raises."""
    try:
        model_bytes = convert(model, inputs)
        session = make_session(model_bytes)
    except Exception as exc:  # any converter gap: serve with scikit-learn
        return Compilation(f"fallback: conversion failed: {_first_line(exc)}", None, None)
    try:
        return _verify(model, inputs, held_out, session, model_bytes)
    except Exception as exc:  # e.g. held-out values the graph rejects: serve with scikit-learn
        return Compilation(f"fallback: verification failed: {_first_line(exc)}", None, None)


def _verify(
    model: Any,
    inputs: Sequence[InputColumn],
    held_out: pd.DataFrame,
    session: Any,
    model_bytes: bytes,
) -> Compilation:
    """Score ``held_out`` with both and compare labels and probabilities (or values)."""
    frame = held_out[[c.name for c in inputs]].dropna(
        subset=[c.name for c in inputs if c.type not in NUMERIC_TYPES]
    )
    if frame.empty:
        return Compilation("fallback: no held-out rows to verify the ONNX graph on", None, None)
    outputs = session.run(None, onnx_feed(frame, inputs))
    final = final_step(model)
    with np.errstate(all="ignore"):
        expected = np.asarray(model.predict(frame))
        if hasattr(final, "predict_proba") and len(outputs) > 1:
            diff = float(np.max(np.abs(outputs[1] - model.predict_proba(frame))))
            labels_agree = np.array_equal(outputs[0].ravel(), expected.ravel())
        else:
            got = outputs[0].ravel().astype("float64")
            diff = float(np.max(np.abs(got - expected.astype("float64"))))
            labels_agree = True
    if not labels_agree:
        wrong = int(np.sum(outputs[0].ravel() != expected.ravel()))
        return Compilation(
            f"fallback: ONNX labels differ from scikit-learn's on {wrong} of {len(frame)} rows",
            diff,
            None,
            len(frame),
        )
    if not diff <= TOLERANCE:
        return Compilation(
            f"fallback: max abs difference {diff:.3g} exceeds tolerance {TOLERANCE:g}",
            diff,
            None,
            len(frame),
        )
    return Compilation("ok", diff, model_bytes, len(frame))
