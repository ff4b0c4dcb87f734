"""The user's own table: a CSV/parquet file or an SQL query, described by a small dict.

``{"path": "loans.csv", "target": "default"}`` or
``{"sql": "select * from loans", "url": "postgresql+psycopg://...", "target": "default"}``
(``url`` defaults to the settings' database), plus optional ``name``, ``task``, ``time_column``,
``groups`` and role overrides ``numeric``, ``categorical``, ``boolean``, ``skewed``, ``drop``
(at the top level or in a ``roles`` table: ``[dataset.roles]``).

Every column gets one decision, with its reason (:func:`mlfactory.datasets.decide_roles`); the
decisions travel with the dataset (``Dataset.role_decisions``) so ``spec show``, the run and the
dashboard show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.datasets._base import Dataset, Task
from mlfactory.datasets._roles import decide_roles, infer_task, parse_numbers
from mlfactory.exceptions import DataError, DegenerateDataError, SpecError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings, mask_url, mask_urls_in_text

__all__ = ["USER_TABLE_KEYS", "labelled_rows", "load_user_table"]

logger = get_logger(__name__)

USER_TABLE_KEYS = (
    "path",
    "sql",
    "url",
    "target",
    "name",
    "task",
    "time_column",
    "groups",
    "numeric",
    "categorical",
    "boolean",
    "skewed",
    "drop",
    "roles",
    "horizon",
)
ROLE_KEYS = ("numeric", "categorical", "boolean", "skewed", "drop")
FILE_READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def _as_list(spec: Mapping[str, Any], key: str, where: str = "table field") -> list[str]:
    value = spec.get(key) or []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where} {key!r} must be a list of column names, got {value!r}")
    return list(value)


def _role_overrides(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """Role lists from the table's top level and its ``roles`` sub-table, merged."""
    nested = spec.get("roles") or {}
    if not isinstance(nested, Mapping):
        raise SpecError(f"table field 'roles' must be a table of role lists, got {nested!r}")
    unknown = sorted(set(nested) - set(ROLE_KEYS))
    if unknown:
        raise SpecError(
            f"unknown field(s) {', '.join(unknown)} in dataset.roles; "
            f"valid fields: {', '.join(ROLE_KEYS)}"
        )
    return {
        key: [*_as_list(spec, key), *_as_list(nested, key, "dataset.roles field")]
        for key in ROLE_KEYS
    }


def _target(frame: pd.DataFrame, target: str, task: Task | None, where: str) -> pd.Series:
    """The target column, text of numbers read as numbers for regression."""
    y = frame[target]
    if task is Task.REGRESSION and not pd.api.types.is_numeric_dtype(y.dtype):
        parsed = parse_numbers(y)
        if parsed is None:
            raise DataError(f"{where}: regression target {target!r} must be numeric, got {y.dtype}")
        y = parsed[0]
    return y


def _read_file(path: Path) -> pd.DataFrame:
    reader = FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(
            f"cannot read {path}: unsupported file type {path.suffix or '(none)'!r}; "
            f"expected one of {', '.join(FILE_READERS)}"
        )
    from mlfactory._tables import read_table_file

    return read_table_file(path, "data file")  # a CSV's delimiter sniffed: `;` exports too


def labelled_rows(y: pd.Series, target: str, where: str) -> np.ndarray:
    """The rows whose target is present (a warning names how many are not): a row without a
    label can neither train nor be scored against one. None labelled is one error."""
    labelled = y.notna().to_numpy()
    if not labelled.any():
        raise DegenerateDataError(
            f"{where}: target {target!r} is missing in every one of {len(y)} rows"
        )
    if not labelled.all():
        dropped = int((~labelled).sum())
        logger.warning("%s: dropping %d rows whose target %r is missing", where, dropped, target)
    return labelled


def _read_sql(sql: str, url: str) -> pd.DataFrame:
    import sqlalchemy as sa

    from mlfactory.db import get_engine

    try:
        with get_engine(url).connect() as connection:
            return pd.read_sql_query(sa.text(sql), connection)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ else exc
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        raise DataError(
            f"query failed on {mask_url(url)}: {mask_urls_in_text(reason)} (query: {sql})"
        ) from exc


def load_user_table(spec: Mapping[str, Any], *, settings: Settings | None = None) -> Dataset:
    """Load a user table described by ``spec``; roles come from dtypes unless overridden."""
    unknown = sorted(set(spec) - set(USER_TABLE_KEYS))
    if unknown:
        raise SpecError(
            f"unknown table field(s) {', '.join(unknown)}; "
            f"valid fields: {', '.join(USER_TABLE_KEYS)}"
        )
    if ("path" in spec) == ("sql" in spec):
        raise SpecError(
            "a table needs exactly one of 'path' (CSV or parquet file) or 'sql' (a query)"
        )
    target = spec.get("target")
    if not isinstance(target, str) or not target:
        raise SpecError("a table needs 'target': the name of the column to predict")
    if "path" in spec:
        path = Path(spec["path"])
        frame = _read_file(path)
        where, default_name = f"file {path}", path.stem
    else:
        settings = settings or get_settings()
        url = spec.get("url") or settings.database_url
        frame = _read_sql(str(spec["sql"]), str(url))
        where, default_name = f"query {spec['sql']!r} on {mask_url(str(url))}", "sql"
    columns = ", ".join(map(str, frame.columns))
    time_column, group_column = spec.get("time_column"), spec.get("groups")
    overrides = _role_overrides(spec)
    named = [target, time_column, group_column, *(c for v in overrides.values() for c in v)]
    missing = [c for c in named if c is not None and c not in frame.columns]
    if missing:
        raise DataError(f"{where} has no column(s) {', '.join(missing)}; columns: {columns}")
    if spec.get("task") is not None:
        try:
            task: Task | None = Task(str(spec["task"]))
        except ValueError:
            raise SpecError(
                f"invalid task {spec['task']!r}; expected one of {', '.join(t.value for t in Task)}"
            ) from None
    else:
        task = None
    y_all = _target(frame, target, task, where)
    if task is None and not pd.api.types.is_numeric_dtype(y_all.dtype):
        parsed = parse_numbers(y_all)  # "0"/"1" or "3,5" stored as text
        if parsed is not None and parsed[0].nunique() > 2:
            y_all = parsed[0]
    if not len(frame):
        raise DegenerateDataError(f"{where} has no rows: nothing to train on")
    keep = labelled_rows(y_all, target, where)
    dropped = int((~keep).sum())

    special = [c for c in (target, time_column, group_column) if c is not None]
    inference = decide_roles(frame.drop(columns=special), **overrides)
    frame = frame[keep].reset_index(drop=True)
    y = y_all[keep].reset_index(drop=True)
    X = inference.X[keep].reset_index(drop=True)
    roles = inference.roles
    integral = pd.api.types.is_float_dtype(y.dtype) and bool((y == y.round()).all())
    if task is not Task.REGRESSION and integral:
        y = y.astype("int64")  # 0.0/1.0 read from a column with gaps: labels 0/1
    if task is None:
        task = infer_task(y)
    classes = int(y.nunique())
    target_reason = (
        f"{task.value}: {classes} classes" if task is Task.CLASSIFICATION else f"{task.value}"
    )
    if dropped:
        target_reason += f"; {dropped} rows with a missing target dropped"
    decisions = [{"column": target, "role": "target", "reason": target_reason}]
    if time_column is not None:
        decisions.append({"column": time_column, "role": "time", "reason": "time_column"})
    if group_column is not None:
        decisions.append({"column": group_column, "role": "groups", "reason": "groups"})
    decisions += inference.table()
    for decision in inference.dropped:
        logger.warning(
            "%s: column %r not used as a feature: %s (%s)",
            where,
            decision.column,
            decision.role,
            decision.reason,
        )
    for decision in inference.mostly_numbers:  # categories that were likely meant as numbers
        logger.warning("%s: column %r: %s", where, decision.column, decision.reason)
    if time_column is not None:
        times = frame[time_column]
        kind = times.dtype
        if not (pd.api.types.is_datetime64_any_dtype(kind) or pd.api.types.is_numeric_dtype(kind)):
            try:
                times = pd.to_datetime(times)
            except (ValueError, TypeError) as exc:
                raise DataError(
                    f"{where}: time column {time_column!r} is neither dates nor numbers"
                ) from exc
        X = pd.concat([times.rename(time_column), X], axis=1)
    groups = frame[group_column].rename(group_column) if group_column is not None else None
    name = str(spec.get("name") or default_name)
    logger.info("loaded table %s: %d rows, task %s", name, len(X), task.value)
    return Dataset(
        name=name,
        X=X,
        y=y.rename(target),
        task=task,
        roles=roles,
        time_column=time_column,
        groups=groups,
        horizon=int(spec.get("horizon", 0)),
        description=f"User table from {where}",
        source=where,
        metadata={"rows_dropped_missing_target": str(dropped)},
        role_decisions=decisions,
        number_formats=inference.number_formats,
    )
