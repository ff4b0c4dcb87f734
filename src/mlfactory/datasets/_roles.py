"""Infer column roles and the task from dtypes; shared by the user-data and stocks loaders."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from mlfactory.datasets._base import ColumnRoles, Task
from mlfactory.exceptions import SpecError

__all__ = ["MAX_CLASSES", "infer_roles", "infer_task", "to_plain_floats"]

MAX_CLASSES = 20  # a non-float target with at most this many distinct values is a class label


def _role_of(series: pd.Series) -> str | None:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    ):
        return "categorical"
    return None  # datetimes, timedeltas, intervals...: no preprocessing role


def infer_roles(
    frame: pd.DataFrame,
    *,
    numeric: Iterable[str] = (),
    categorical: Iterable[str] = (),
    boolean: Iterable[str] = (),
    skewed: Iterable[str] = (),
) -> tuple[ColumnRoles, list[str]]:
    """Roles of every column of ``frame`` from its dtype, with explicit overrides.

    bool -> boolean, numeric -> numeric, object/category/string -> categorical. Returns the roles
    and the columns that got no role (e.g. datetimes), which the caller drops or reports.
    """
    overrides: dict[str, str] = {}
    for role, names in (("numeric", numeric), ("categorical", categorical), ("boolean", boolean)):
        for name in names:
            if name in overrides and overrides[name] != role:
                raise SpecError(
                    f"column {name!r} is listed as both {overrides[name]} and {role}; "
                    "give each column one role"
                )
            overrides[name] = role
    buckets: dict[str, list[str]] = {"numeric": [], "categorical": [], "boolean": []}
    unassigned: list[str] = []
    for column in frame.columns:
        role = overrides.get(column) or _role_of(frame[column])
        if role is None:
            unassigned.append(column)
        else:
            buckets[role].append(column)
    skewed = tuple(skewed)
    not_numeric = [c for c in skewed if c not in buckets["numeric"]]
    if not_numeric:
        raise SpecError(
            f"skewed column(s) {', '.join(not_numeric)} are not numeric columns; "
            f"numeric columns: {', '.join(buckets['numeric']) or '(none)'}"
        )
    roles = ColumnRoles(
        numeric=tuple(buckets["numeric"]),
        categorical=tuple(buckets["categorical"]),
        boolean=tuple(buckets["boolean"]),
        skewed=skewed,
    )
    return roles, unassigned


def infer_task(target: pd.Series) -> Task:
    """Classification for bool/text/category targets and integers with few distinct values."""
    dtype = target.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return Task.CLASSIFICATION
    if pd.api.types.is_float_dtype(dtype):
        return Task.REGRESSION
    return Task.CLASSIFICATION if target.nunique() <= MAX_CLASSES else Task.REGRESSION


def to_plain_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable numeric columns (``Int8``, ``Float64``...) as float64 with NaN, as sklearn needs."""
    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if (
            isinstance(dtype, pd.api.extensions.ExtensionDtype)
            and pd.api.types.is_numeric_dtype(dtype)
            and not pd.api.types.is_bool_dtype(dtype)
        ):
            out[column] = out[column].astype("float64")
    return out
