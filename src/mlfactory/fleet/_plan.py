"""Segment plans: which rows form which segment, who gets a model, and how fits are packed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.datasets._base import Dataset
from mlfactory.exceptions import SpecError
from mlfactory.spec._schema import ExperimentSpec, SegmentsSpec

__all__ = [
    "FALLBACK_KEY",
    "SegmentPlan",
    "check_segment_columns",
    "key_text",
    "pack",
    "plan_segments",
    "segment_keys",
]

FALLBACK_KEY = "__fallback__"
"""The manifest key of the model trained on every row (``fallback = "global"``)."""

KEY_SEPARATOR = "|"
MISSING = "<missing>"


def key_text(values: Any) -> str:
    """One segment key from its column values: ``Energy``, or ``EU|retail`` for two columns.

    Numbers that are whole print without ``.0`` and missing values as ``<missing>``, so a key
    reads the same from a parquet file, a CSV and a JSON request.
    """
    if not isinstance(values, list | tuple):
        values = [values]
    return KEY_SEPARATOR.join(_one(v) for v in values)


def _one(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _column(dataset: Dataset, column: str) -> pd.Series | None:
    if column in dataset.X.columns:
        return dataset.X[column]
    if dataset.groups is not None and dataset.groups.name == column:
        return dataset.groups
    return None


def check_segment_columns(spec: ExperimentSpec, dataset: Dataset) -> None:
    """Every ``segments.by`` column exists in the data (a feature, or the dataset's groups)."""
    from mlfactory.spec._load import field_error

    assert spec.segments is not None
    missing = [c for c in spec.segments.by if _column(dataset, c) is None]
    if missing:
        known = [str(c) for c in dataset.X.columns]
        if dataset.groups is not None and dataset.groups.name:
            known.append(str(dataset.groups.name))
        raise field_error(
            spec,
            "segments.by",
            f"column(s) {', '.join(map(repr, missing))} not in dataset {dataset.name!r}; "
            f"its columns: {', '.join(known)}",
        )


def segment_keys(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """The segment key of every row of ``frame`` (which holds the ``by`` columns)."""
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise SpecError(f"segment column(s) {', '.join(map(repr, missing))} missing from the input")
    if len(by) == 1:
        column = frame[by[0]]
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        names = np.array([key_text(u) for u in uniques] + [MISSING], dtype=object)
        return pd.Series(names[codes], index=frame.index, dtype=object)
    parts = [frame[c].map(_one).astype(str) for c in by]
    key = parts[0]
    for part in parts[1:]:
        key = key + KEY_SEPARATOR + part
    return key.astype(object)


def dataset_keys(dataset: Dataset, by: list[str]) -> pd.Series:
    frame = pd.DataFrame({c: _column(dataset, c) for c in by}, index=dataset.X.index)
    return segment_keys(frame, by)


@dataclass
class SegmentPlan:
    """One segment: its key, column values, rows (positions into the dataset) and fate."""

    key: str
    values: list[Any]
    train_idx: np.ndarray
    test_idx: np.ndarray
    status: str  # "train" (own model) or "fallback" (too few rows)
    reason: str = ""

    @property
    def rows(self) -> int:
        return len(self.train_idx) + len(self.test_idx)


@dataclass
class FleetPlan:
    by: list[str]
    segments: list[SegmentPlan]
    fallback: str
    min_rows: int
    keys: pd.Series = field(repr=False, default_factory=pd.Series)

    @property
    def trained(self) -> list[SegmentPlan]:
        return [s for s in self.segments if s.status == "train"]

    def summary(self) -> dict[str, Any]:
        small = [s for s in self.segments if s.status != "train"]
        return {
            "by": self.by,
            "segments": len(self.segments),
            "own_model": len(self.segments) - len(small),
            "fallback_segments": len(small),
            "fallback": self.fallback,
            "min_rows": self.min_rows,
            "fallback_rows": int(sum(s.rows for s in small)),
        }


def plan_segments(
    segments: SegmentsSpec,
    dataset: Dataset,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
) -> FleetPlan:
    """Cut the experiment's split by segment; segments under ``min_rows`` rows use the fallback.

    A segment's training and test rows are its rows on each side of the experiment's own split,
    so a time-ordered split stays time-ordered inside every segment and no segment model sees a
    row the fallback model is tested on.
    """
    keys = dataset_keys(dataset, segments.by)
    key_array = keys.to_numpy()
    train_keys, test_keys = key_array[train_idx], key_array[test_idx]
    order_train = pd.Series(np.arange(len(train_idx))).groupby(train_keys, sort=True).indices
    order_test = pd.Series(np.arange(len(test_idx))).groupby(test_keys, sort=True).indices
    frame = pd.DataFrame({c: _column(dataset, c) for c in segments.by}, index=dataset.X.index)
    first = pd.Series(np.arange(len(key_array))).groupby(key_array, sort=True).first()
    plans = []
    for key in sorted(set(order_train) | set(order_test)):
        tr = train_idx[order_train.get(key, np.array([], dtype=int))]
        te = test_idx[order_test.get(key, np.array([], dtype=int))]
        row = frame.iloc[int(first[key])]
        values = [_plain(v) for v in row.tolist()]
        rows = len(tr) + len(te)
        if rows < segments.min_rows:
            plan = SegmentPlan(key, values, tr, te, "fallback", f"{rows} rows < min_rows")
        else:
            plan = SegmentPlan(key, values, tr, te, "train")
        plans.append(plan)
    return FleetPlan(list(segments.by), plans, segments.fallback, segments.min_rows, keys)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def pack(sizes: dict[str, int], pack_rows: int) -> list[list[str]]:
    """Group segment keys into tasks of about ``pack_rows`` rows (first-fit decreasing).

    A segment bigger than ``pack_rows`` is a task of its own; small ones share, so 500 segments
    of 2,000 rows make 50 tasks at the default 20,000, not 500 (or 500 x candidates x folds).
    """
    tasks: list[list[str]] = []
    loads: list[int] = []
    for key in sorted(sizes, key=lambda k: (-sizes[k], k)):
        size = sizes[key]
        for index, load in enumerate(loads):
            if load + size <= pack_rows:
                tasks[index].append(key)
                loads[index] += size
                break
        else:
            tasks.append([key])
            loads.append(size)
    return tasks


def plan_for(resolved: Any) -> FleetPlan:
    """The segment plan of a resolved spec that has ``[segments]``."""
    segments = resolved.spec.segments
    if segments is None:
        raise SpecError(f"spec {resolved.spec.name!r} has no [segments] table")
    return plan_segments(segments, resolved.dataset, resolved.train_idx, resolved.test_idx)


def describe_plan(plan: FleetPlan) -> dict[str, Any]:
    """``spec show``'s view: the summary and one row per segment (largest first)."""
    rows = [
        {
            "segment": s.key,
            "rows": s.rows,
            "train_rows": len(s.train_idx),
            "test_rows": len(s.test_idx),
            "model": "own" if s.status == "train" else _fallback_word(plan.fallback),
        }
        for s in sorted(plan.segments, key=lambda s: (-s.rows, s.key))
    ]
    return {**plan.summary(), "segment_rows": rows}


def _fallback_word(fallback: str) -> str:
    return "fallback (global)" if fallback == "global" else "none (refused)"
