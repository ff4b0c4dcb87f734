"""From request columns to the scoring DataFrame: validated, coerced to the training schema.

Every payload format is first turned into ``{column: [values]}``; :func:`build_frame` then checks
each column against the model's input schema. The DataFrame (with the schema's dtypes) is built
only when a scikit-learn path asks for it: the ONNX path feeds arrays straight from the columns.
Types are forgiving where that is safe (ints for doubles, numeric strings, nulls where the
pipeline imputes); anything else is a :class:`PayloadError` naming the column and the type.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.registry import InputColumn
from mlfactory.serving._errors import INVALID_PARAMETER_VALUE, PayloadError

__all__ = ["Batch", "build_frame", "describe_type"]

_TYPE_WORDS = {
    "double": "a number (double)",
    "float": "a number (float)",
    "long": "an integer (long)",
    "integer": "an integer",
    "boolean": "a boolean (true/false)",
    "string": "a string",
    "datetime": "a datetime (ISO 8601)",
}
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def describe_type(mlflow_type: str) -> str:
    """Human words for an MLflow column type, used in error messages."""
    return _TYPE_WORDS.get(mlflow_type, mlflow_type)


@dataclass
class Batch:
    """A validated request: typed values per schema column (also what the log stores)."""

    columns: dict[str, list[Any]]  # converted to the schema's types, None for nulls; JSON-safe
    schema: Sequence[InputColumn]
    rows: int
    ignored: list[str] = field(default_factory=list)  # extra columns the model does not use

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The DataFrame to score, with the schema's dtypes (built once, on first use)."""
        data = {column.name: _series(column, self.columns[column.name]) for column in self.schema}
        return pd.DataFrame(data, copy=False)


class _Bad(ValueError):
    """A value the column's type cannot hold; the optional argument says why."""


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 2, 40, 40, 40
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_INT_RANGES = {"long": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1)}


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        if isinstance(value, int | float | np.integer | np.floating):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            raise _Bad
    except OverflowError:  # an integer literal beyond the float range
        raise _Bad("out of range") from None
    except ValueError:
        raise _Bad from None
    if math.isinf(number):
        raise _Bad("out of range")
    return number


def _int_converter(kind: str) -> Callable[[Any], int]:
    low, high = _INT_RANGES[kind]

    def to_int(value: Any) -> int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | np.integer):
            number = int(value)
        elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
            if len(value.strip()) > 30:  # beyond any int64, and int() refuses 4300+ digits
                raise _Bad(f"out of range {low}..{high}")
            number = int(value.strip())  # exact, not through a float
        else:
            real = _to_float(value)
            if math.isnan(real) or not real.is_integer():
                raise _Bad
            number = int(real)
        if not low <= number <= high:
            raise _Bad(f"out of range {low}..{high}")
        return number

    return to_int


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Bad


def _to_datetime(value: Any) -> str | None:
    if not isinstance(value, str | datetime):
        raise _Bad
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise _Bad from None
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is not None:  # one scale for every row: naive UTC
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.isoformat()


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "double": _to_float,
    "float": _to_float,
    "long": _int_converter("long"),
    "integer": _int_converter("integer"),
    "boolean": _to_bool,
    "string": _to_str,
    "datetime": _to_datetime,
}


def _plain_floats(values: Sequence[Any]) -> list[float | None] | None:
    """A few JSON numbers and nulls, all finite, without numpy (a request's column is usually
    one value: numpy's array, check and ``tolist`` cost more than the loop); ``None`` when any
    value is something else (a string, a boolean, an infinity, an int too large for a float)."""
    out: list[float | None] = []
    for value in values:
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN is null; an infinity goes the way that names it
                if value != value:
                    out.append(None)
                    continue
                return None
            out.append(value)
        elif kind is int:
            if not -_INT_FLOAT_LIMIT < value < _INT_FLOAT_LIMIT:
                return None
            out.append(float(value))
        elif value is None:
            out.append(None)
        else:
            return None
    return out


_INT_FLOAT_LIMIT = 2**1023  # ints below this convert to a finite float, as numpy converts them
_PLAIN_MAX = 16  # columns up to this many values try the loop first


def _floats_at_once(values: Sequence[Any]) -> list[float | None] | None:
    """Numbers, numeric strings and nulls, all finite, converted in one numpy call (CSV cells,
    JSON numbers); ``None`` when any value needs the cell-by-cell path and its error message."""
    if len(values) <= _PLAIN_MAX:
        plain = _plain_floats(values)
        if plain is not None:
            return plain
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if array.ndim != 1 or np.isinf(array).any():
        return None
    return [None if number != number else number for number in array.tolist()]


def _convert(column: InputColumn, values: Sequence[Any]) -> list[Any]:
    if column.type in ("double", "float"):
        fast = _floats_at_once(values)
        if fast is not None:
            return fast
    convert = _CONVERTERS.get(column.type, lambda v: v)
    out: list[Any] = []
    for position, value in enumerate(values):
        if _is_null(value):
            out.append(None)
            continue
        try:
            converted = convert(value)
        except _Bad as bad:
            why = f" ({bad.args[0]})" if bad.args else ""
            raise PayloadError(
                f"column {column.name!r} row {position}: {_shown(value)} is not "
                f"{describe_type(column.type)}{why}"
            ) from None
        out.append(None if isinstance(converted, float) and math.isnan(converted) else converted)
    return out


def _shown(value: Any) -> str:
    """A short view of a rejected value (bounded depth and length, whatever the nesting)."""
    text = _SHORT.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _series(column: InputColumn, values: list[Any]) -> Any:
    has_null = any(v is None for v in values)
    kind = column.type
    if kind in ("double", "float"):
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if kind in ("long", "integer"):
        if has_null:  # ints with nulls become floats, as pandas reads them
            return np.array([np.nan if v is None else v for v in values], dtype="float64")
        return np.array(values, dtype="int64")
    if kind == "boolean":
        if has_null:
            return pd.array(values, dtype="boolean")
        return np.array(values, dtype=bool)
    if kind == "datetime":
        return pd.to_datetime(pd.Series(values, dtype="object"))
    return pd.array([np.nan if v is None else v for v in values], dtype="str")


def build_frame(
    raw: dict[str, Sequence[Any]], schema: Sequence[InputColumn], max_rows: int
) -> Batch:
    """Validate ``{column: values}`` against ``schema``: a :class:`Batch` of typed columns."""
    lengths = {name: len(values) for name, values in raw.items()}
    distinct = set(lengths.values())
    if len(distinct) > 1:
        shown = ", ".join(f"{name}={n}" for name, n in list(lengths.items())[:6])
        raise PayloadError(
            f"columns have different lengths ({shown}); expected one per row",
            400,
            INVALID_PARAMETER_VALUE,  # MLflow: the table does not fit the schema
        )
    rows = distinct.pop() if distinct else 0
    if rows == 0:
        raise PayloadError("empty batch: send at least one record", 400, INVALID_PARAMETER_VALUE)
    if rows > max_rows:
        raise PayloadError(
            f"batch of {rows} rows exceeds the limit of {max_rows} rows (--max-batch-rows)", 413
        )
    known = {column.name for column in schema}
    missing = [c for c in schema if c.name not in raw and c.required]
    if missing:
        shown = ", ".join(f"{c.name!r} ({describe_type(c.type)})" for c in missing)
        raise PayloadError(f"missing column(s) {shown}; null values are accepted, absence is not")
    columns = {
        column.name: _convert(column, raw[column.name]) if column.name in raw else [None] * rows
        for column in schema
    }
    ignored = [name for name in raw if name not in known]
    return Batch(columns, schema, rows, ignored)
