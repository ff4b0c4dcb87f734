"""Rows to score, read the way the model's training table was read.

A user table's text columns become numbers or booleans when the model trains (``"1,234.5"``,
``"3,5"``, ``"n/a"``, ``"True"``/``"FALSE"``: :func:`mlfactory.datasets.decide_roles`); the file to
score is usually written the same way, so ``predict`` and ``explain --data`` convert it with the
same rules before the pipeline sees it. A value that is not what the column held in training is
one :class:`DataError` naming the column and the value. Light (pandas only): it runs on Dask
workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mlfactory.exceptions import DataError
from mlfactory.schema import InputColumn

__all__ = ["NUMERIC_TYPES", "conform_inputs", "reads_as_plain_numbers"]

NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})


def _is_number_dtype(dtype: object) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _first_bad(series: pd.Series, ok: pd.Series) -> object:
    from mlfactory.datasets._roles import _clean_text

    text = _clean_text(series)
    bad = text[text.notna() & ~ok]
    return bad.iloc[0] if len(bad) else None


def reads_as_plain_numbers(number_format: str | None) -> bool:
    """Whether text of plain numbers (``"1.234"``) means what a CSV reader makes of it in a
    column training read this way: not with a decimal comma (there ``"1.234"`` is 1234) nor a
    unit removed (:attr:`InputColumn.number_format`)."""
    return number_format is None or not (
        number_format.startswith("decimal comma") or "removed" in number_format
    )


def _numbers(series: pd.Series, column: InputColumn, where: str) -> pd.Series:
    from mlfactory.datasets._roles import _clean_text, parse_numbers

    name = column.name
    fast = pd.to_numeric(series, errors="coerce")
    if reads_as_plain_numbers(column.number_format) and fast.notna().sum() == series.notna().sum():
        return fast.astype("float64")  # plain numbers as text: the common case
    text = _clean_text(series)
    if text.notna().sum() == 0:
        return pd.Series(float("nan"), index=series.index, dtype="float64")
    parsed = parse_numbers(series, prefer=column.number_format)
    if parsed is not None:
        return parsed[0]
    bad = _first_bad(series, fast.notna() | text.map(_is_number))
    raise DataError(
        f"{where}: column {name!r} holds {bad!r} where the model expects a number "
        f"(it was numeric in training); fix or blank that value"
    )


def _is_number(value: object) -> bool:
    """Whether one value alone reads as a number (to name the first that does not)."""
    from mlfactory.datasets._roles import parse_numbers

    return bool(pd.isna(value)) or parse_numbers(pd.Series([value], dtype="string")) is not None


def _booleans(series: pd.Series, name: str, where: str) -> pd.Series:
    from mlfactory.datasets._roles import _clean_text, _text_bool

    if _is_number_dtype(series.dtype) and series.dropna().isin([0, 1]).all():
        return series.map({0: False, 1: True}).astype("boolean")
    converted = _text_bool(series)
    if converted is not None or _clean_text(series).notna().sum() == 0:
        return converted if converted is not None else series.astype("boolean")
    ok = _clean_text(series).str.lower().isin({"true", "false"})
    raise DataError(
        f"{where}: column {name!r} holds {_first_bad(series, ok)!r} where the model expects "
        "true or false (it was boolean in training)"
    )


def _na_text(series: pd.Series) -> bool:
    """Text whose missing values are ``pd.NA`` (not NaN, as pandas reads a CSV)."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return dtype.na_value is pd.NA
    if not pd.api.types.is_object_dtype(dtype):
        return False
    missing = series.to_numpy()[series.isna().to_numpy()]  # looks at the missing values only
    return any(value is pd.NA for value in missing)


def conform_inputs(frame: pd.DataFrame, inputs: Sequence[InputColumn], where: str) -> pd.DataFrame:
    """``frame`` with each model input column of text converted to its training type.

    Numeric columns of text are read as :func:`~mlfactory.datasets._roles.parse_numbers` reads
    them (decimal point or comma, thousands separators, the usual null spellings; values that
    read either way, as training read the column); boolean
    columns of text ``true``/``false`` (any case) or 0/1 become booleans; text with ``pd.NA``
    for missing gets NaN, as training saw. Other columns are left as they are.
    """
    changed: dict[str, pd.Series] = {}
    for column in inputs:
        if column.name not in frame.columns:
            continue
        series = frame[column.name]
        dtype = series.dtype
        if column.type in NUMERIC_TYPES and not _is_number_dtype(dtype):
            if pd.api.types.is_bool_dtype(dtype):
                continue
            changed[column.name] = _numbers(series, column, where)
        elif column.type == "boolean" and not pd.api.types.is_bool_dtype(dtype):
            changed[column.name] = _booleans(series, column.name, where)
        elif column.type == "string" and _na_text(series):
            # Dask's CSV reader gives `string` columns with pd.NA, which the imputers of the
            # pipeline cannot compare ("boolean value of NA is ambiguous"); training saw NaN
            changed[column.name] = series.astype("str")
    if not changed:
        return frame
    return frame.assign(**changed)
