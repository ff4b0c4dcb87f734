"""Consecutive-window tests: is this year's distribution of a column last year's?

Rows are grouped into calendar windows (years starting in ``anchor_month``, quarters or months) by
a date column; each window is compared with the next one by the two-sample KS test (statistic,
p-value, Benjamini-Hochberg adjusted p-value across the pairs) and the Wasserstein distance in
standard deviations of the earlier window, as in the distribution-shift lab of the course.
"""

from __future__ import annotations

from enum import StrEnum
from itertools import pairwise

import numpy as np
import pandas as pd

from mlfactory.exceptions import DataError, SpecError
from mlfactory.monitoring._drift import DriftConfig
from mlfactory.monitoring._stats import bh_adjust, numeric_stats

__all__ = ["WindowFreq", "window_drift"]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class WindowFreq(StrEnum):
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"


def _period_freq(freq: WindowFreq, anchor_month: int) -> str:
    if not 1 <= anchor_month <= 12:
        raise SpecError(f"anchor month {anchor_month}: expected 1 (January) to 12 (December)")
    last = _MONTHS[(anchor_month - 2) % 12]  # a window starting in March ends in February
    if freq == WindowFreq.YEAR:
        return f"Y-{last}"
    if freq == WindowFreq.QUARTER:
        return f"Q-{last}"
    return "M"


def window_drift(
    frame: pd.DataFrame,
    column: str,
    date_column: str = "date",
    freq: WindowFreq | str = WindowFreq.YEAR,
    anchor_month: int = 1,
    config: DriftConfig | None = None,
) -> pd.DataFrame:
    """One row per pair of consecutive windows: sizes, means, KS statistic/p-value, verdict.

    A pair where either window has fewer than ``config.min_rows`` values is kept with status
    ``not testable``. Drifted pairs follow the feature rule (adjusted p < alpha and effect >=
    ``min_effect_numeric``).
    """
    config = config or DriftConfig()
    try:
        freq = WindowFreq(freq)
    except ValueError:
        valid = ", ".join(f.value for f in WindowFreq)
        raise SpecError(f"window frequency {freq!r}: expected one of {valid}") from None
    for name in (column, date_column):
        if name not in frame.columns:
            raise DataError(
                f"column {name!r} not found; available: {', '.join(map(str, frame.columns))}"
            )
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.notna().sum() == 0:
        raise DataError(f"column {column!r} has no numeric values to compare")
    dates = pd.to_datetime(frame[date_column], errors="coerce")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    periods = dates.dt.to_period(_period_freq(freq, anchor_month))
    data = pd.DataFrame({"period": periods, "value": values}).dropna()
    groups = {
        p: np.sort(g.to_numpy(dtype=np.float64))
        for p, g in data.groupby("period", sort=True)["value"]
    }
    keys = sorted(groups)
    if len(keys) < 2:
        raise DataError(
            f"{len(keys)} {freq.value} window(s) of {column!r} in {date_column!r}; "
            "expected at least 2 to compare"
        )
    rows = []
    for before, after in pairwise(keys):
        a, b = groups[before], groups[after]
        row = {
            "window": _label(before),
            "next_window": _label(after),
            "n_window": a.size,
            "n_next": b.size,
            "mean_window": float(a.mean()),
            "mean_next": float(b.mean()),
            "std_window": float(a.std()),
            "std_next": float(b.std()),
            "ks_statistic": np.nan,
            "p_value": np.nan,
            "wasserstein_sd": np.nan,
            "status": "not testable",
        }
        if min(a.size, b.size) >= config.min_rows and not (a[0] == a[-1] == b[0] == b[-1]):
            result = numeric_stats(a, b, bins=config.bins)
            row.update(
                ks_statistic=result.ks_statistic,
                p_value=result.p_value,
                wasserstein_sd=result.wasserstein_norm,
                status="ok",
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    tested = table["status"] == "ok"
    table["p_adjusted"] = np.nan
    if tested.any():
        adjusted = bh_adjust(table.loc[tested, "p_value"])
        table.loc[tested, "p_adjusted"] = adjusted
        drifted = (
            tested
            & (table["p_adjusted"] < config.alpha)
            & (table["wasserstein_sd"] >= config.min_effect_numeric)
        )
        table.loc[drifted, "status"] = "drift"
    return table


def _label(period: pd.Period) -> str:
    if period.freqstr.startswith("M"):
        return str(period)
    return f"{period.start_time:%Y-%m}..{period.end_time:%Y-%m}"
