"""compute_features: hand-computed values, no look-ahead, agreement with pandas' own rolling."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlfactory.data import compute_features, feature_columns
from mlfactory.exceptions import DataError, SpecError


def _prices(adj_close: list[float], shuffle: bool = False) -> pd.DataFrame:
    n = len(adj_close)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="D"),
            "open": np.arange(n, dtype=float),
            "high": [a + 2.0 for a in adj_close],
            "low": [a - 1.0 for a in adj_close],
            "close": [a * 2 for a in adj_close],
            "adj_close": adj_close,
            "volume": np.arange(n, dtype=np.int64) * 10,
            "sector": "Tech",
        }
    )
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=3)
    return frame


def test_hand_computed_values():
    # adj_close 100 -> 110 (+10%) -> 99 (-10%) -> 99 (0%) -> 108.9 (+10%)
    out = compute_features(_prices([100.0, 110.0, 99.0, 99.0, 108.9]), windows=(2,), horizon=1)
    assert list(out.columns[-7:]) == feature_columns((2,))
    assert math.isnan(out.loc[0, "close_lag_1"]) and math.isnan(out.loc[0, "returns"])
    assert out["close_lag_1"].tolist()[1:] == [200.0, 220.0, 198.0, 198.0]
    assert out["adj_close_lag_1"].tolist()[1:] == [100.0, 110.0, 99.0, 99.0]
    np.testing.assert_allclose(out["returns"].to_numpy()[1:], [0.1, -0.1, 0.0, 0.1], atol=1e-12)
    # first row: unknown direction is missing, not "down"; a flat day is not positive
    assert out["positive_return"].tolist() == [pd.NA, 1, 0, 0, 1]
    np.testing.assert_allclose(out["hi_lo_range"], 3.0, rtol=1e-12)
    mean2 = out["returns_mean_2"].to_numpy()
    assert np.isnan(mean2[:2]).all()
    np.testing.assert_allclose(mean2[2:], [0.0, -0.05, 0.05], atol=1e-12)
    # target = next day's positive_return; last row kept with a null target
    assert out["target"].tolist() == [1, 0, 0, 1, pd.NA]
    assert str(out["target"].dtype) == "Int8"


def test_sorts_by_date_and_passes_other_columns_through():
    ordered = compute_features(_prices([10.0, 11.0, 12.0, 11.0, 13.0, 12.0]))
    shuffled = compute_features(_prices([10.0, 11.0, 12.0, 11.0, 13.0, 12.0], shuffle=True))
    pd.testing.assert_frame_equal(ordered, shuffled)
    assert ordered["date"].is_monotonic_increasing
    assert ordered["sector"].eq("Tech").all()
    assert ordered["volume"].tolist() == [0, 10, 20, 30, 40, 50]


def test_horizon_shifts_target_further():
    out = compute_features(_prices([1.0, 2.0, 1.0, 2.0, 3.0, 2.0]), horizon=2)
    # positive_return: NA,1,0,1,1,0 -> target(h=2) = values two rows later
    assert out["positive_return"].tolist() == [pd.NA, 1, 0, 1, 1, 0]
    assert out["target"].tolist() == [0, 1, 1, 0, pd.NA, pd.NA]


def test_rolling_means_agree_with_pandas_including_gaps():
    rng = np.random.default_rng(7)
    adj = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    adj[[50, 51, 200]] = np.nan  # gaps in prices
    out = compute_features(_prices(adj.tolist()), windows=(5, 20))
    returns = pd.Series(adj).pct_change(fill_method=None)
    np.testing.assert_allclose(out["returns"], returns, rtol=1e-12, equal_nan=True)
    for w in (5, 20):
        expected = returns.rolling(w, min_periods=w).mean()
        np.testing.assert_allclose(out[f"returns_mean_{w}"], expected, rtol=1e-9, equal_nan=True)
    assert out["positive_return"].isna().sum() == 1 + 3 + 2  # first row + returns touching gaps


@pytest.mark.parametrize("k", [0, 5, 17, 38])
def test_future_poisoning_changes_only_targets(k):
    rng = np.random.default_rng(11)
    adj = 50 * np.exp(np.cumsum(rng.normal(0, 0.03, 40)))
    clean = _prices(adj.tolist())
    poisoned = clean.copy()
    future = poisoned.index > k
    for column in ("open", "high", "low", "close", "adj_close"):
        poisoned.loc[future, column] = poisoned.loc[future, column] * 7.0 + 1000.0
    a = compute_features(clean, windows=(3, 10), horizon=1)
    b = compute_features(poisoned, windows=(3, 10), horizon=1)
    features = [c for c in feature_columns((3, 10)) if c != "target"]
    pd.testing.assert_frame_equal(a.loc[:k, features], b.loc[:k, features])
    # the target of row k looks at row k+1, which changed: poisoning is visible there only
    assert a.loc[: k - 1, "target"].equals(b.loc[: k - 1, "target"])
    changed = (a[features] != b[features]) & a[features].notna()
    assert changed.loc[k + 1 :].any(axis=None) or k == len(a) - 1


def test_short_series_and_errors():
    out = compute_features(_prices([5.0]), windows=(3,))
    assert out["target"].isna().all() and out["returns_mean_3"].isna().all()
    with pytest.raises(DataError, match="adj_close"):
        compute_features(_prices([1.0, 2.0]).drop(columns="adj_close"))
    twice = pd.concat([_prices([1.0, 2.0]), _prices([1.0, 2.0])])
    with pytest.raises(DataError, match="duplicate dates"):
        compute_features(twice)
    with pytest.raises(DataError, match="several tickers"):
        compute_features(_prices([1.0, 2.0]).assign(ticker=["A", "B"]))
    with pytest.raises(SpecError, match="windows"):
        compute_features(_prices([1.0, 2.0]), windows=(0,))
    with pytest.raises(SpecError, match="horizon"):
        compute_features(_prices([1.0, 2.0]), horizon=0)
