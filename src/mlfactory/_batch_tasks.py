"""What a batch-scoring task runs, on a Dask worker or a local thread: read, score, write.

Everything a task pickles by reference lives here or in other light modules (``mlfactory.schema``,
``mlfactory._worker``, ``mlfactory.exceptions``), never in ``mlfactory.batch`` or the registry:
unpickling the first task made each worker import MLflow, ~2.5 s before its first partition.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlfactory._conform import conform_inputs
from mlfactory._worker import fit_friendly_allocator
from mlfactory.exceptions import DataError
from mlfactory.schema import InputColumn

__all__ = [
    "Part",
    "part_name",
    "proba_name",
    "read_row_groups",
    "score_checked",
    "score_into_folder",
    "score_partition",
    "score_task",
]

Part = pd.DataFrame | Callable[[], pd.DataFrame]  # a partition, or a loader of one


def proba_name(label: Any) -> str:
    return f"proba_{label}"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def read_row_groups(
    file: str, groups: list[int], columns: list[str], options: dict | None = None
) -> pd.DataFrame:
    """One partition: consecutive row groups of one parquet file (a path or an ``s3://`` URL;
    ``options``: the store's endpoint, never a credential: the worker has its own)."""
    import pyarrow.parquet as pq

    if "://" in file:
        from mlfactory.storage import location_from

        location = location_from(file, options or {})
        with location.fs.open(location.path, "rb") as handle:
            return pq.ParquetFile(handle).read_row_groups(groups, columns=columns).to_pandas()
    return pq.ParquetFile(file).read_row_groups(groups, columns=columns).to_pandas()


def score_partition(
    frame: pd.DataFrame,
    model: Any,
    inputs: Sequence[InputColumn],
    key_columns: Sequence[str],
    classes: Sequence[Any],
    model_version: str,
    scored_at: datetime,
    where: str = "input",
) -> pd.DataFrame:
    """Key columns + ``prediction`` (+ ``proba_<class>``) + ``model_version`` + ``scored_at``.

    Preprocessing runs once per partition; ``predict`` and ``predict_proba`` share its output,
    so the values equal ``model.predict(X)`` / ``model.predict_proba(X)`` exactly. Text columns
    are first read as training read them (:func:`mlfactory._conform.conform_inputs`).
    """
    frame = conform_inputs(frame, inputs, where)
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
            out[proba_name(label)] = proba[:, position]
    result = pd.DataFrame(out)
    result["model_version"] = pd.Series(str(model_version), index=result.index, dtype="str")
    result["scored_at"] = pd.Timestamp(scored_at)
    return result


def score_checked(frame: pd.DataFrame, model: Any, **kwargs: Any) -> pd.DataFrame:
    """:func:`score_partition`, with values the model rejects reported as a :class:`DataError`."""
    try:
        return score_partition(frame, model, **kwargs)
    except (ValueError, TypeError) as exc:
        raise DataError(f"the model could not score a partition of the input: {exc}") from None


def _load(part: Part) -> pd.DataFrame:
    return part() if callable(part) else part


def score_task(part: Part, model: Any, index: int, *, score: Callable) -> pd.DataFrame:
    """Read and score a partition; hand it back to be written by the caller."""
    with fit_friendly_allocator():  # on a Dask worker: no mmap per array (see mlfactory._worker)
        return score(_load(part), model)


def score_into_folder(part: Part, model: Any, index: int, *, score: Callable, folder: str) -> int:
    """Read, score and write a partition where the task runs; only its row count goes back."""
    with fit_friendly_allocator():
        result = score(_load(part), model)
        result.to_parquet(os.path.join(folder, part_name(index)), index=False)
    return len(result)
