"""Infer column roles and the task from dtypes; shared by the user-data and stocks loaders."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlfactory.datasets._base import ColumnRoles, Task
from mlfactory.exceptions import DataError, SpecError

__all__ = [
    "MAX_CLASSES",
    "RoleDecision",
    "RoleInference",
    "decide_roles",
    "infer_roles",
    "infer_task",
    "parse_numbers",
    "to_plain_floats",
]

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
    """Classification for bool/text/category targets, any target with two distinct values and
    integers with few distinct values; regression otherwise."""
    dtype = target.dtype
    if target.nunique(dropna=True) == 2:
        return Task.CLASSIFICATION
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


# --- Role inference for user tables: one decision per column, with the reason -------------------

FEATURE_ROLES = ("numeric", "categorical", "boolean")
NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a"})
IDENTIFIER_MIN_DISTINCT = 20  # fewer distinct values than this is a small categorical, not an id
IDENTIFIER_MIN_SHARE = 0.5  # text where more than half the values are distinct is an identifier
INDEX_MIN_ROWS = 10  # a 0..n-1 column in a table this small may be a real feature
MOSTLY_NUMBERS = "mostly numbers"
MOSTLY_NUMBERS_SHARE = 0.9  # of the non-missing values, beyond which a few words look like typos
_UNNAMED = re.compile(r"^(?:Unnamed: \d+(?:_level_\d+)?|index|level_0)$")
_SEPARATORS = {
    # decimal point; thousands by comma, space, apostrophe or underscore
    "decimal point": (
        re.compile(
            r"^[+-]?(?:\d{1,3}(?:[, '_]\d{3})+|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?$|^[+-]?\.\d+$"
        ),
        ".",
        ", '_",
    ),
    # decimal comma; thousands by point, space or apostrophe
    "decimal comma": (
        re.compile(r"^[+-]?(?:\d{1,3}(?:[. ']\d{3})+|\d+)(?:,\d*)?$|^[+-]?,\d+$"),
        ",",
        ". '",
    ),
}

# a unit written on every value of a column: removed before the number is read ("$1,234.50" and
# "-$5" in dollars, "14.2%" as 14.2: the number as written, never divided by 100)
_UNITS = {  # name: (on every value, what is removed, what replaces it)
    "currency sign": (r"^[+-]?\s*[$€£¥]", r"^([+-]?)\s*[$€£¥]\s*", r"\1"),
    "percent sign": (r"\d\s*%$", r"\s*%$", ""),
}


@dataclass(frozen=True)
class RoleDecision:
    """What one column of a user table is used as, and why."""

    column: str
    role: str  # target, numeric, categorical, boolean, datetime, identifier, constant, excluded
    reason: str

    @property
    def used(self) -> bool:
        return self.role in FEATURE_ROLES


@dataclass
class RoleInference:
    """Converted feature columns, their roles and one decision per column of the table."""

    X: pd.DataFrame
    roles: ColumnRoles
    decisions: list[RoleDecision] = field(default_factory=list)
    # text columns read as numbers: how (decimal comma or point, a unit removed)
    number_formats: dict[str, str] = field(default_factory=dict)

    def table(self) -> list[dict[str, str]]:
        return [{"column": d.column, "role": d.role, "reason": d.reason} for d in self.decisions]

    @property
    def dropped(self) -> list[RoleDecision]:
        return [d for d in self.decisions if not d.used and d.role != "target"]

    @property
    def mostly_numbers(self) -> list[RoleDecision]:
        """Categorical columns that look like numbers with a few stray words (worth a warning)."""
        return [d for d in self.decisions if f"; {MOSTLY_NUMBERS} (" in d.reason]


def _clean_text(series: pd.Series) -> pd.Series:
    """Stripped strings with the usual null spellings as missing (values only, not the dtype)."""
    text = series.astype("string").str.strip()
    return text.mask(text.str.lower().isin(NULL_TOKENS))


def parse_numbers(series: pd.Series, prefer: str | None = None) -> tuple[pd.Series, str] | None:
    """Text that is numbers -> (float64 series, how it was read), else ``None``.

    Accepts surrounding spaces, a decimal point or a decimal comma, and thousands separators.
    Values that read either way (``"1,234"``, ``"2.500"``) read the way ``prefer`` says (how
    the model's training read the column: ``"decimal comma"``...); without it a column where a
    comma is only ever followed by exactly three digits reads as thousands.
    """
    text = _clean_text(series)
    values = text.dropna()
    if values.empty:
        return None
    unit = None
    for name, (present, pattern, keep) in _UNITS.items():
        if values.str.contains(present).all():  # on every value, or it is not the column's unit
            text = text.str.replace(pattern, keep, regex=True)
            values, unit = text.dropna(), name
            break
    fits = {
        name: bool(values.str.fullmatch(pattern).all())
        for name, (pattern, _, _) in _SEPARATORS.items()
    }
    if fits["decimal point"] and fits["decimal comma"]:
        if prefer is not None:  # as the model's training read the column
            comma = prefer.startswith("decimal comma")
            fits["decimal comma"], fits["decimal point"] = comma, not comma
        else:  # "1,234" is thousands unless some comma has other than 3 digits after it
            after_comma = values.str.extract(r",(\d*)$")[0].dropna()
            fits["decimal comma"] = bool((after_comma.str.len() != 3).any())
            fits["decimal point"] = not fits["decimal comma"]
    for name, (_, decimal, thousands) in _SEPARATORS.items():
        if not fits[name]:
            continue
        plain = text
        for mark in thousands:
            plain = plain.str.replace(mark, "", regex=False)
        if decimal == ",":
            plain = plain.str.replace(",", ".", regex=False)
        numbers = pd.to_numeric(plain, errors="coerce").astype("float64")
        if numbers.notna().sum() == values.size:
            has_separator = bool(values.str.contains(r"[,'_ ]|\.\d{3}(?:\D|$)").any())
            how = name if (decimal == "," or has_separator or series.dtype != object) else "text"
            how = how if unit is None else f"{how}, {unit} removed"
            numbers.attrs["number_format"] = how  # recorded with a model trained on it
            return numbers, how
    return None


def _parse_dates(series: pd.Series) -> pd.Series | None:
    values = _clean_text(series).dropna()
    if values.empty or not values.str.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[ T][\d:.]+)?\S*").all():
        return None
    try:
        return pd.to_datetime(_clean_text(series), format="ISO8601")
    except (ValueError, TypeError):
        return None


def _is_row_number(series: pd.Series) -> bool:
    """Integers that are exactly 0..n-1 or 1..n (in any order): a saved index, not a feature."""
    n = len(series)
    if n < INDEX_MIN_ROWS or series.isna().any():
        return False
    if not (
        pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_float_dtype(series.dtype)
    ):
        return False
    values = np.sort(series.to_numpy(dtype="float64"))
    return bool(
        np.array_equal(values, np.arange(n, dtype="float64"))
        or np.array_equal(values, np.arange(1, n + 1, dtype="float64"))
    )


def _text_bool(series: pd.Series) -> pd.Series | None:
    values = _clean_text(series)
    lowered = values.dropna().str.lower()
    if lowered.empty or not lowered.isin({"true", "false"}).all():
        return None
    return values.str.lower().map({"true": True, "false": False}).astype("boolean")


def _decide(column: str, series: pd.Series, listed: str | None) -> tuple[str, str, pd.Series]:
    """(role, reason, converted series) for one feature column."""
    dtype = series.dtype
    if listed == "numeric":
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return "numeric", "listed as numeric in the spec", series
        parsed = parse_numbers(series)
        if parsed is None:
            bad = _clean_text(series).dropna()
            sample = next((v for v in bad if parse_numbers(pd.Series([v])) is None), bad.iloc[0])
            raise DataError(
                f"column {column!r} is listed as numeric but holds text that is not a number "
                f"(e.g. {sample!r})"
            )
        return (
            "numeric",
            f"listed as numeric in the spec; text read as numbers ({parsed[1]})",
            parsed[0],
        )
    if listed == "categorical":
        return "categorical", "listed as categorical in the spec", series
    if listed == "boolean":
        return "boolean", "listed as boolean in the spec", series
    if not str(column).strip() or _UNNAMED.match(str(column)):
        return "identifier", "unnamed column (a saved pandas index)", series
    distinct = series.nunique(dropna=True)
    if distinct == 0:
        return "constant", "every value is missing", series
    if distinct == 1:
        value = series.dropna().iloc[0]
        value = value.item() if isinstance(value, np.generic) else value  # 7, not np.int64(7)
        return "constant", f"one value only ({value!r})", series
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", f"{dtype} column", series
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", "dates are not features (name it time_column to split by time)", series
    if pd.api.types.is_numeric_dtype(dtype):
        if _is_row_number(series):
            return (
                "identifier",
                f"values are the row numbers 0..{len(series) - 1} or 1..{len(series)} (an index)",
                series,
            )
        return "numeric", f"{dtype} column", series
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    ):
        as_bool = _text_bool(series)
        if as_bool is not None:
            return "boolean", "text true/false", as_bool
        parsed = parse_numbers(series)
        if parsed is not None:
            numbers, how = parsed
            if _is_row_number(numbers):
                return "identifier", "text of the row numbers (an index)", numbers
            return "numeric", f"text read as numbers ({how})", numbers
        dates = _parse_dates(series)
        if dates is not None:
            return (
                "datetime",
                "text read as dates; dates are not features (name it time_column to split by time)",
                dates,
            )
        present = int(series.notna().sum())
        if distinct >= IDENTIFIER_MIN_DISTINCT and distinct > IDENTIFIER_MIN_SHARE * present:
            return (
                "identifier",
                f"text with {distinct} distinct values in {present} rows (an identifier; list it "
                "under categorical to use it)",
                series,
            )
        mostly = _mostly_numbers(series)
        if mostly is not None:
            return "categorical", f"text with {distinct} distinct values; {mostly}", series
        return "categorical", f"text with {distinct} distinct values", series
    return "excluded", f"unsupported dtype {dtype}", series


def _mostly_numbers(series: pd.Series) -> str | None:
    """Why a text column read as categories looks like numbers with a few stray words (``age``
    with two ``"unknown"``): its order would be lost, unseen numbers ignored. ``None`` otherwise."""
    text = _clean_text(series).dropna()
    if text.empty:
        return None
    words = text[pd.to_numeric(text, errors="coerce").isna()]
    if words.empty or len(words) > (1 - MOSTLY_NUMBERS_SHARE) * len(text):
        return None
    counts = words.value_counts()
    shown = ", ".join(f"{value!r} ({count})" for value, count in counts.head(3).items())
    more = f" and {len(counts) - 3} more" if len(counts) > 3 else ""
    share = 1 - len(words) / len(text)
    return (
        f"{MOSTLY_NUMBERS} ({share:.0%}): {shown}{more} are not numbers, so every value is a "
        "category; blank those cells to use it as a number"
    )


def decide_roles(
    frame: pd.DataFrame,
    *,
    numeric: Iterable[str] = (),
    categorical: Iterable[str] = (),
    boolean: Iterable[str] = (),
    skewed: Iterable[str] = (),
    drop: Iterable[str] = (),
) -> RoleInference:
    """One role per feature column of a user table, each with its reason.

    ``frame`` holds the feature columns as read (target, time and group columns removed). Spec
    overrides win; then: unnamed or row-number columns are indexes, single-valued ones constant,
    text of numbers numeric (decimal point or comma), text of dates datetime, text where most
    values differ an identifier, other text categorical. Only numeric, categorical and boolean
    columns are features; the rest are reported and dropped.
    """
    listed: dict[str, str] = {}
    for role, names in (
        ("numeric", numeric),
        ("categorical", categorical),
        ("boolean", boolean),
        ("drop", drop),
    ):
        for name in names:
            if name in listed and listed[name] != role:
                raise SpecError(
                    f"column {name!r} is listed as both {listed[name]} and {role}; "
                    "give each column one role"
                )
            listed[name] = role
    decisions: list[RoleDecision] = []
    columns: dict[str, pd.Series] = {}
    formats: dict[str, str] = {}
    buckets: dict[str, list[str]] = {role: [] for role in FEATURE_ROLES}
    for column in frame.columns:
        if listed.get(column) == "drop":
            decisions.append(RoleDecision(str(column), "excluded", "listed under drop in the spec"))
            continue
        role, reason, converted = _decide(column, frame[column], listed.get(column))
        decisions.append(RoleDecision(str(column), role, reason))
        if role in FEATURE_ROLES:
            buckets[role].append(column)
            columns[column] = converted
        if role == "numeric" and "number_format" in converted.attrs:  # text read as numbers
            formats[str(column)] = converted.attrs["number_format"]
    skewed = tuple(skewed)
    not_numeric = [c for c in skewed if c not in buckets["numeric"]]
    if not_numeric:
        raise SpecError(
            f"skewed column(s) {', '.join(not_numeric)} are not numeric features; "
            f"numeric features: {', '.join(buckets['numeric']) or '(none)'}"
        )
    X = to_plain_floats(pd.DataFrame(columns, index=frame.index))
    for column in buckets["boolean"]:
        if X[column].dtype != bool and not X[column].isna().any():
            X[column] = X[column].astype(bool)
    roles = ColumnRoles(
        numeric=tuple(buckets["numeric"]),
        categorical=tuple(buckets["categorical"]),
        boolean=tuple(buckets["boolean"]),
        skewed=skewed,
    )
    return RoleInference(
        X=X[list(roles.all)], roles=roles, decisions=decisions, number_formats=formats
    )
