"""Batch scoring on a version's verified ONNX graph, on a Dask worker or a local thread.

A light module, like :mod:`mlfactory._batch_tasks`: a task that carries a :class:`CompiledModel`
imports neither MLflow nor the registry when it is unpickled on a worker. The graph's bytes
travel with the model; each process builds its onnxruntime session once, on first use.

A partition the graph cannot represent exactly (a null in a boolean or string column, an
infinite number, values onnxruntime rejects) is scored by the scikit-learn pipeline instead,
so the output never depends on which path scored a partition beyond the verified 1e-6.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlfactory._batch_tasks import proba_name, score_partition
from mlfactory._conform import conform_inputs
from mlfactory.exceptions import DataError
from mlfactory.schema import InputColumn

__all__ = ["CompiledModel", "score_compiled"]


class CompiledModel:
    """A verified ONNX graph with the scikit-learn pipeline it was verified against."""

    def __init__(self, model_bytes: bytes, model: Any, label_dtype: Any, proba: bool) -> None:
        self.model_bytes = model_bytes
        self.model = model  # scores the partitions the graph cannot represent
        self.label_dtype = np.dtype(label_dtype)  # what the pipeline's predict returns
        self.proba = proba
        self._session: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None  # a session does not pickle: each process builds its own
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def session(self) -> Any:
        """The onnxruntime session, built once per process (one thread per run: Dask's
        threads already use the cores)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    from mlfactory.compile import make_session

                    self._session = make_session(self.model_bytes)
        return self._session

    def run(self, features: pd.DataFrame, inputs: Sequence[InputColumn]) -> Any:
        """``(predictions, probabilities or None)`` from the graph, or ``None`` when the
        partition must be scored by scikit-learn."""
        from mlfactory.compile import onnx_feed

        feed = onnx_feed(features, inputs)
        if feed is None or any(
            a.dtype.kind == "f" and np.isinf(a).any() for a in feed.values()
        ):  # scikit-learn refuses infinities: let it say so
            return None
        try:
            outputs = self.session().run(None, feed)
        except Exception:  # onnxruntime rejected a value: scikit-learn scores or explains
            return None
        predictions = np.asarray(outputs[0]).ravel().astype(self.label_dtype, copy=False)
        return predictions, (outputs[1] if self.proba else None)


def score_compiled(
    frame: pd.DataFrame,
    model: CompiledModel,
    inputs: Sequence[InputColumn],
    key_columns: Sequence[str],
    classes: Sequence[Any],
    model_version: str,
    scored_at: datetime,
    where: str = "input",
) -> pd.DataFrame:
    """:func:`mlfactory._batch_tasks.score_partition`'s columns, scored by the ONNX graph
    (by scikit-learn where the graph cannot represent the partition)."""
    frame = conform_inputs(frame, inputs, where)
    features = pd.DataFrame({c.name: frame.get(c.name, np.nan) for c in inputs}, index=frame.index)
    try:
        scored = model.run(features, inputs)
        if scored is None:
            return score_partition(
                frame, model.model, inputs, key_columns, classes, model_version, scored_at
            )
    except (ValueError, TypeError) as exc:
        raise DataError(f"the model could not score a partition of the input: {exc}") from None
    predictions, probabilities = scored
    out = {key: frame[key].to_numpy() for key in key_columns}
    out["prediction"] = predictions
    if classes:
        for position, label in enumerate(classes):
            out[proba_name(label)] = probabilities[:, position]
    result = pd.DataFrame(out)
    result["model_version"] = pd.Series(str(model_version), index=result.index, dtype="str")
    result["scored_at"] = pd.Timestamp(scored_at)
    return result
