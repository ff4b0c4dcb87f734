"""load_features: filters pushed down, keys and order guaranteed, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlfactory.data import compute_features, featurize, load_features
from mlfactory.data._feature_store import sample_features
from mlfactory.data._layout import BRONZE_SCHEMA, bronze_prices_dir
from mlfactory.exceptions import DataError, SpecError
from mlfactory.settings import get_settings


def write_bronze(root: Path, ticker: str, start: str, days: int, seed: int) -> pd.DataFrame:
    """One ticker's prices in the bronze layout (one file per year)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days)
    adj = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
    frame = pd.DataFrame(
        {
            "date": dates.date,
            "open": adj,
            "high": adj * 1.01,
            "low": adj * 0.99,
            "close": adj,
            "adj_close": adj,
            "volume": rng.integers(1000, 5000, days),
            "sector": "Energy",
            "subsector": "Oil",
        }
    )
    for year, rows in frame.groupby(dates.year):
        folder = root / f"ticker={ticker}" / f"year={year}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pandas(rows, schema=BRONZE_SCHEMA, preserve_index=False),
            folder / "part-0.parquet",
        )
    return frame


@pytest.fixture
def store() -> dict[str, pd.DataFrame]:
    bronze = bronze_prices_dir(get_settings())
    prices = {
        "MSFT": write_bronze(bronze, "MSFT", "2022-12-01", 60, 1),
        "AAPL": write_bronze(bronze, "AAPL", "2022-12-15", 40, 2),
        "ZM": write_bronze(bronze, "ZM", "2023-01-02", 30, 3),
    }
    assert featurize(windows=(5,)).ok
    return prices


def test_everything_sorted_with_keys(store):
    frame = load_features()
    assert list(frame.columns[:2]) == ["ticker", "date"]
    assert len(frame) == 130
    assert frame["ticker"].unique().tolist() == ["AAPL", "MSFT", "ZM"]
    assert frame.groupby("ticker")["date"].is_monotonic_increasing.all()
    assert frame.index.tolist() == list(range(130))
    assert str(frame["target"].dtype) == "Int8"
    want = compute_features(store["ZM"], windows=(5,))
    got = frame[frame["ticker"] == "ZM"]
    np.testing.assert_allclose(got["returns_mean_5"], want["returns_mean_5"], equal_nan=True)
    assert got["target"].tolist()[-3:] == want["target"].tolist()[-3:]


def test_filters_tickers_dates_columns(store):
    frame = load_features(["ZM", "MSFT"], start="2023-01-05", end="2023-01-10", columns=["returns"])
    assert list(frame.columns) == ["ticker", "date", "returns"]
    assert frame["ticker"].unique().tolist() == ["MSFT", "ZM"]
    # business days 5, 6, 9, 10 January for each ticker
    days = [pd.Timestamp(d) for d in ["2023-01-05", "2023-01-06", "2023-01-09", "2023-01-10"]]
    assert frame["date"].tolist() == days * 2
    one = load_features("AAPL", end=pd.Timestamp("2022-12-16"))
    assert len(one) == 2 and set(one["ticker"]) == {"AAPL"}


def test_lazy_matches_eager(store):
    lazy = load_features(
        ["MSFT", "AAPL"], start="2023-01-01", columns=["close", "target"], lazy=True
    )
    assert lazy.npartitions == 2
    eager = load_features(["MSFT", "AAPL"], start="2023-01-01", columns=["close", "target"])
    # Dask turns text into its own string dtype; the values must be the same
    pd.testing.assert_frame_equal(lazy.compute().reset_index(drop=True), eager, check_dtype=False)


def test_errors(store):
    with pytest.raises(DataError, match=r"unknown ticker\(s\) NOPE.*holds 3 ticker\(s\): AAPL"):
        load_features(["NOPE", "ZM"])
    with pytest.raises(DataError, match=r"unknown feature column.*available: ticker, date"):
        load_features(columns=["nope"])
    with pytest.raises(DataError, match="start 2023-02-01 is after end"):
        load_features(start="2023-02-01", end="2023-01-01")


def test_empty_store_says_what_to_run():
    with pytest.raises(DataError, match=r"data ingest.*data featurize"):
        load_features()


def test_sample_features_to_csv_and_parquet(store, tmp_path):
    out = tmp_path / "s.parquet"
    result = sample_features(out, frac=0.5, stratify="sector", seed=1, tickers=["MSFT", "ZM"])
    assert (result.rows, result.selected, result.tickers) == (45, 90, 2)
    again = pd.read_parquet(out)
    assert len(again) == 45 and list(again.columns[:2]) == ["ticker", "date"]
    csv = tmp_path / "s.csv"
    sample_features(csv, frac=0.5, stratify="sector", seed=1, tickers=["MSFT", "ZM"])
    assert pd.read_csv(csv)["returns"].tolist() == pytest.approx(
        again["returns"].tolist(), nan_ok=True
    )
    with pytest.raises(SpecError, match=r"unknown extension '\.txt'"):
        sample_features(tmp_path / "s.txt", n=3)
    with pytest.raises(SpecError, match="exactly one of n"):
        sample_features(tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def test_cli_sample(store, tmp_path):
    from typer.testing import CliRunner

    from mlfactory.cli import app

    out = tmp_path / "sample.csv"
    args = ["data", "sample", "--out", str(out), "--n", "10", "--stratify", "target", "--seed", "4"]
    result = CliRunner().invoke(app, [*args, "--tickers", "AAPL", "--start", "2023-01-01"])
    assert result.exit_code == 0, result.output
    assert "wrote 10 of" in result.output
    frame = pd.read_csv(out)
    assert len(frame) == 10 and set(frame["ticker"]) == {"AAPL"}
    assert (frame["date"] >= "2023-01-01").all()
    bad = CliRunner().invoke(
        app, ["data", "sample", "--out", str(out), "--n", "1", "--frac", "0.1"]
    )
    assert bad.exit_code == 2 and "exactly one of n" in bad.output
