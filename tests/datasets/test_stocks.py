"""Stocks: the real ingest -> featurize -> load_features pipeline feeds a time-ordered dataset."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlfactory.data import SyntheticSource, featurize, ingest, load_features
from mlfactory.datasets import Task, load_dataset, time_train_test_split
from mlfactory.exceptions import DataError
from mlfactory.settings import get_settings

TICKERS = pd.DataFrame(
    {
        "ticker": ["AAA", "BBB", "CCC"],
        "sector": ["Tech", "Energy", "Tech"],
        "subsector": ["x", "y", "z"],
    }
)


def build_store(horizon: int = 1) -> None:
    settings = get_settings()
    report = ingest(settings, TICKERS, SyntheticSource(seed=1), date(2021, 1, 1), date(2021, 4, 30))
    assert all(outcome.error is None for outcome in report.outcomes)
    assert featurize(settings, horizon=horizon, scheduler="synchronous").ok


def test_stocks_dataset_from_the_feature_store() -> None:
    build_store()
    stored = load_features()
    data = load_dataset("stocks")
    assert data.task is Task.CLASSIFICATION
    assert data.time_column == "date" and data.horizon == 1
    # the last row of each ticker has no target yet and is dropped
    assert len(data.X) == len(stored) - 3
    assert data.y.isin([0, 1]).all() and data.y.dtype.kind == "i"
    assert list(data.groups.unique()) == ["AAA", "BBB", "CCC"]
    assert data.X["date"].is_monotonic_increasing
    assert "target" not in data.X.columns and "ticker" not in data.X.columns
    assert {"returns", "close_lag_1", "returns_mean_10"} <= set(data.roles.numeric)
    assert "sector" in data.roles.categorical
    assert set(data.roles.all) | {"date"} == set(data.X.columns)
    assert all(data.X[c].dtype == np.float64 for c in ("positive_return", "returns"))
    # values agree with the store, row for row
    merged = stored.dropna(subset=["target"]).merge(
        pd.concat([data.X, data.groups, data.y], axis=1), on=["ticker", "date"], suffixes=("", "_d")
    )
    assert len(merged) == len(data.X)
    assert (merged["target"].astype(int) == merged["target_d"]).all()
    np.testing.assert_allclose(merged["returns"], merged["returns_d"], equal_nan=True)


def test_stocks_options_and_split() -> None:
    build_store(horizon=3)
    data = load_dataset("stocks", tickers=["AAA", "CCC"], start="2021-02-01")
    assert data.horizon == 3  # read from the silver files
    assert set(data.groups) == {"AAA", "CCC"}
    assert data.X["date"].min() >= pd.Timestamp("2021-02-01")
    train, test = time_train_test_split(data, test_size=0.25)
    dates = data.X["date"]
    unique = np.sort(dates.unique())
    first_test = dates.iloc[test].min()
    # every ticker's rows of the test dates are in test; 3 purged dates before them
    assert (dates.iloc[test] >= first_test).all()
    assert set(data.groups.iloc[test]) == {"AAA", "CCC"}
    position = np.searchsorted(unique, first_test)
    assert dates.iloc[train].max() == unique[position - 4]
    assert load_dataset("stocks", horizon=1).horizon == 1


def test_empty_store_is_a_data_error() -> None:
    with pytest.raises(DataError):
        load_dataset("stocks")
