"""Per-ticker features of daily prices, with the no-leakage rule built in.

Every feature of row ``t`` is computed from rows ``<= t`` only; the single column that looks ahead
is ``target`` (whether the return ``horizon`` days later is positive). The arithmetic lives in
:func:`feature_arrays` on plain numpy arrays so that the pandas API (:func:`compute_features`) and
the parquet pipeline (``featurize``) share exactly the same code.

Missing values, by decision:

* the first row of a ticker has no previous close: ``close_lag_1``, ``adj_close_lag_1``,
  ``returns`` are NaN and ``positive_return`` is missing (null), not 0 — an unknown direction is
  not a down day;
* ``returns_mean_<w>`` needs ``w`` valid returns (``min_periods=w``), so it is NaN for the first
  ``w`` rows and around any gap in prices;
* the last ``horizon`` rows have a null ``target``. They are **kept**, so that the most recent
  days can be scored; training code drops rows whose target is null.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlfactory.data._lazy import lazy_module
from mlfactory.exceptions import DataError, SpecError

pd = lazy_module("pandas")  # imported when first used

__all__ = [
    "DEFAULT_WINDOWS",
    "FEATURE_INPUT_COLUMNS",
    "TARGET_COLUMN",
    "compute_features",
    "feature_arrays",
    "feature_columns",
    "validate_feature_params",
]

DEFAULT_WINDOWS: tuple[int, ...] = (10,)
TARGET_COLUMN = "target"
# Columns the features are computed from (the rest of the bronze columns pass through).
FEATURE_INPUT_COLUMNS = ("date", "high", "low", "close", "adj_close")
# Nullable booleans as 0/1: pandas ``Int8``, parquet ``int8`` with nulls.
FLAG_DTYPE = "Int8"


def validate_feature_params(windows: Iterable[int], horizon: int) -> tuple[tuple[int, ...], int]:
    """Check windows (positive ints, deduplicated, sorted) and horizon (positive int)."""
    try:
        clean = tuple(sorted({int(w) for w in windows}))
    except (TypeError, ValueError):
        raise SpecError(
            f"invalid windows {windows!r}: expected positive integers such as 10,20"
        ) from None
    if not clean or any(w < 1 for w in clean):
        raise SpecError(f"invalid windows {list(windows)!r}: expected positive integers (>= 1)")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise SpecError(f"invalid horizon {horizon!r}: expected a positive integer (days ahead)")
    return clean, int(horizon)


def feature_columns(windows: Iterable[int] = DEFAULT_WINDOWS) -> list[str]:
    """Names of the columns :func:`compute_features` adds, in order (target last)."""
    clean, _ = validate_feature_params(windows, 1)
    return [
        "close_lag_1",
        "adj_close_lag_1",
        "returns",
        "positive_return",
        "hi_lo_range",
        *(f"returns_mean_{w}" for w in clean),
        TARGET_COLUMN,
    ]


def _lag(values: np.ndarray, k: int = 1) -> np.ndarray:
    out = np.empty_like(values, dtype=np.float64)
    out[:k] = np.nan
    out[k:] = values[:-k] if k < len(values) else values[:0]
    return out


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` rows; NaN unless all ``window`` values are present."""
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        # NaN anywhere in the window propagates, which is exactly min_periods=window.
        out[window - 1 :] = sliding_window_view(values, window).mean(axis=1)
    return out


def feature_arrays(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    adj_close: np.ndarray,
    windows: Sequence[int],
    horizon: int,
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Features of one ticker's date-sorted rows as ``name -> (values, null_mask)``.

    ``null_mask`` is ``None`` for float columns (NaN marks missing) and a boolean mask for the
    0/1 flag columns ``positive_return`` and ``target`` (stored as int8 with nulls).
    """
    n = len(close)
    close_lag = _lag(close)
    adj_lag = _lag(adj_close)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = adj_close / adj_lag - 1.0
    returns_missing = np.isnan(returns)
    positive = (returns > 0).astype(np.int8)
    target = np.zeros(n, dtype=np.int8)
    target_missing = np.ones(n, dtype=bool)
    if horizon < n:
        target[: n - horizon] = positive[horizon:]
        target_missing[: n - horizon] = returns_missing[horizon:]
    columns: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
        "close_lag_1": (close_lag, None),
        "adj_close_lag_1": (adj_lag, None),
        "returns": (returns, None),
        "positive_return": (positive, returns_missing),
        "hi_lo_range": (high - low, None),
    }
    for w in windows:
        columns[f"returns_mean_{w}"] = (_rolling_mean(returns, w), None)
    columns[TARGET_COLUMN] = (target, target_missing)
    return columns


def _check_prices(prices: pd.DataFrame) -> None:
    missing = [c for c in FEATURE_INPUT_COLUMNS if c not in prices.columns]
    if missing:
        raise DataError(
            f"prices lack column(s) {', '.join(missing)}; expected at least "
            f"{', '.join(FEATURE_INPUT_COLUMNS)} (got {', '.join(map(str, prices.columns))})"
        )
    if "ticker" in prices.columns and prices["ticker"].nunique(dropna=False) > 1:
        shown = ", ".join(map(str, prices["ticker"].unique()[:5]))
        raise DataError(
            f"compute_features takes one ticker's rows, got several tickers ({shown}); "
            "group by ticker first (featurize does this per ticker partition)"
        )
    duplicated = prices["date"].duplicated()
    if duplicated.any():
        shown = ", ".join(map(str, prices.loc[duplicated, "date"].unique()[:5]))
        raise DataError(f"prices have duplicate dates ({shown}); expected one row per day")


def compute_features(
    prices: pd.DataFrame,
    windows: Iterable[int] = DEFAULT_WINDOWS,
    horizon: int = 1,
) -> pd.DataFrame:
    """Add features and the next-day target to ONE ticker's daily prices.

    ``prices`` needs ``date``, ``high``, ``low``, ``close``, ``adj_close`` (other columns pass
    through). Rows are sorted by date first; the result has a fresh 0..n-1 index. Added columns:
    ``close_lag_1``, ``adj_close_lag_1``, ``returns`` (adj_close / adj_close_lag_1 - 1),
    ``positive_return`` (returns > 0, nullable Int8), ``hi_lo_range`` (high - low),
    ``returns_mean_<w>`` for each window, and ``target`` = ``positive_return`` ``horizon`` rows
    later (nullable Int8, null on the last ``horizon`` rows, which are kept so they can be scored).
    """
    clean_windows, horizon = validate_feature_params(windows, horizon)
    _check_prices(prices)
    frame = prices.sort_values("date", kind="stable").reset_index(drop=True)
    arrays = feature_arrays(
        frame["high"].to_numpy(dtype=np.float64, na_value=np.nan),
        frame["low"].to_numpy(dtype=np.float64, na_value=np.nan),
        frame["close"].to_numpy(dtype=np.float64, na_value=np.nan),
        frame["adj_close"].to_numpy(dtype=np.float64, na_value=np.nan),
        clean_windows,
        horizon,
    )
    added: dict[str, object] = {}
    for name, (values, null_mask) in arrays.items():
        if null_mask is None:
            added[name] = values
        else:
            added[name] = pd.arrays.IntegerArray(values, null_mask)
    # Recomputed columns replace stale ones of the same name (e.g. features fed back in).
    frame = frame.drop(columns=[c for c in added if c in frame.columns])
    return pd.concat([frame, pd.DataFrame(added, index=frame.index)], axis=1)
