"""Seeded, deterministic row sampling and time splits of DataFrames.

* :func:`random_sample` — ``n`` rows or a fraction ``frac``, without replacement;
* :func:`stratified_sample` — the same, keeping the proportions of the classes of ``by``
  (per-class counts by the largest-remainder rule, so they add up to exactly ``n``);
* :func:`time_split` — rows strictly before a cutoff and rows on or after it.

Sampled rows keep their original order and index; the same seed gives the same rows.
Malformed arguments raise :class:`SpecError`, arguments that do not fit the data
(unknown column, more rows asked than exist) raise :class:`DataError`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlfactory.exceptions import DataError, SpecError

__all__ = [
    "random_sample",
    "sample_size",
    "stratified_sample",
    "time_split",
    "validate_sample_args",
]


def validate_sample_args(n: int | None = None, frac: float | None = None) -> None:
    """Check that exactly one of ``n`` (whole, >= 0) or ``frac`` (in (0, 1]) is given."""
    if (n is None) == (frac is None):
        raise SpecError("give exactly one of n (a row count) or frac (a fraction in (0, 1])")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise SpecError(f"invalid n={n!r}: expected a non-negative whole number of rows")
    if frac is not None and (
        not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac <= 1
    ):
        raise SpecError(f"invalid frac={frac!r}: expected a fraction in (0, 1]")


def sample_size(rows: int, n: int | None = None, frac: float | None = None) -> int:
    """How many of ``rows`` rows to draw for exactly one of ``n`` or ``frac`` (rounded)."""
    validate_sample_args(n, frac)
    if n is not None:
        if n > rows:
            raise DataError(f"cannot sample n={n} rows without replacement from {rows} rows")
        return int(n)
    return round(rows * frac)


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    unknown = [c for c in columns if c not in df.columns]
    if unknown:
        raise DataError(
            f"unknown column(s) {', '.join(map(str, unknown))}; available: "
            f"{', '.join(map(str, df.columns))}"
        )


def random_sample(
    df: pd.DataFrame, n: int | None = None, frac: float | None = None, seed: int = 0
) -> pd.DataFrame:
    """``n`` (or ``frac`` of the) rows drawn uniformly without replacement, in original order."""
    size = sample_size(len(df), n, frac)
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(len(df), size=size, replace=False))
    return df.iloc[positions]


def _allocate(counts: np.ndarray, size: int) -> np.ndarray:
    """Split ``size`` over classes in proportion to ``counts`` (largest remainder, ties first)."""
    quotas = counts * (size / counts.sum())
    taken = np.floor(quotas).astype(np.int64)
    remainder = size - int(taken.sum())
    if remainder:
        order = np.argsort(-(quotas - taken), kind="stable")
        taken[order[:remainder]] += 1
    return np.minimum(taken, counts)


def stratified_sample(
    df: pd.DataFrame,
    by: str | Sequence[str],
    n: int | None = None,
    frac: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Sample keeping the class proportions of column(s) ``by`` (missing values are a class).

    Each class gets its share of the total by the largest-remainder rule: with classes of 60, 30
    and 10 rows, ``n=10`` draws 6, 3 and 1; ``frac=0.5`` draws 30, 15 and 5.
    """
    columns = [by] if isinstance(by, str) else list(by)
    if not columns:
        raise SpecError("stratified_sample needs at least one column in by")
    _check_columns(df, columns)
    size = sample_size(len(df), n, frac)
    if size == 0 or df.empty:
        return df.iloc[:0]
    codes = df.groupby(columns, dropna=False, sort=True).ngroup().to_numpy()
    counts = np.bincount(codes)
    quotas = _allocate(counts, size)
    rng = np.random.default_rng(seed)
    chosen = []
    for group, quota in enumerate(quotas):
        if quota:
            members = np.flatnonzero(codes == group)
            chosen.append(rng.choice(members, size=quota, replace=False))
    positions = np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)
    return df.iloc[positions]


def time_split(
    df: pd.DataFrame, date_column: str, cutoff: str | pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows strictly before ``cutoff`` and rows on or after it (original order kept)."""
    _check_columns(df, [date_column])
    try:
        when = pd.Timestamp(cutoff)
    except (TypeError, ValueError):
        raise SpecError(f"invalid cutoff {cutoff!r}: expected a date such as 2023-01-01") from None
    if pd.isna(when):
        raise SpecError(f"invalid cutoff {cutoff!r}: expected a date such as 2023-01-01")
    try:
        dates = pd.to_datetime(df[date_column])
    except (TypeError, ValueError) as exc:
        raise DataError(f"column {date_column!r} does not hold dates ({exc})") from None
    if dates.isna().any():
        raise DataError(
            f"column {date_column!r} has {int(dates.isna().sum())} missing date(s); "
            "drop or fill them before a time split"
        )
    if dates.dt.tz is not None and when.tzinfo is None:
        when = when.tz_localize(dates.dt.tz)
    before = (dates < when).to_numpy()
    return df[before], df[~before]
