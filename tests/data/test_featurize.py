"""featurize: bronze -> silver per ticker with Dask, incremental, atomic, failures isolated."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlfactory.data import compute_features, featurize
from mlfactory.data._layout import BRONZE_SCHEMA, bronze_prices_dir, silver_features_dir
from mlfactory.exceptions import ConfigError, DataError
from mlfactory.settings import get_settings


def write_bronze(root: Path, ticker: str, start: str, days: int, seed: int) -> pd.DataFrame:
    """Write one ticker's GBM prices in the bronze layout (one file per year); return them."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days)
    adj = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
    frame = pd.DataFrame(
        {
            "date": dates.date,
            "open": adj * 1.001,
            "high": adj * 1.01,
            "low": adj * 0.99,
            "close": adj * 1.05,
            "adj_close": adj,
            "volume": rng.integers(1000, 5000, days),
            "sector": "Tech",
            "subsector": "Chips",
        }
    )
    for year, rows in frame.groupby(dates.year):
        folder = root / f"ticker={ticker}" / f"year={year}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(rows, schema=BRONZE_SCHEMA, preserve_index=False)
        pq.write_table(table, folder / "part-0.parquet")
    return frame


def _silver(ticker: str) -> pd.DataFrame:
    """The ticker's silver rows: its year blocks in order."""
    folder = silver_features_dir(get_settings()) / f"ticker={ticker}"
    table = pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))
    return table.to_pandas(types_mapper={pa.int8(): pd.Int8Dtype()}.get)


@pytest.fixture
def bronze() -> Path:
    return bronze_prices_dir(get_settings())


def test_featurize_matches_compute_features(bronze):
    expected = {
        "AAA": write_bronze(bronze, "AAA", "2021-11-01", 400, 1),
        "BBB": write_bronze(bronze, "BBB", "2022-06-01", 150, 2),
    }
    report = featurize(windows=(5, 20), horizon=2)
    assert report.ok and [r.ticker for r in report.written] == ["AAA", "BBB"]
    assert report.rows_written == 550
    for ticker, prices in expected.items():
        got = _silver(ticker)
        want = compute_features(prices, windows=(5, 20), horizon=2)
        got["date"] = got["date"].astype(object)
        pd.testing.assert_frame_equal(
            got.drop(columns="volume"), want.drop(columns="volume"), check_dtype=False
        )
        assert got["volume"].tolist() == want["volume"].tolist()
    silver = silver_features_dir(get_settings())
    hidden = [p for p in silver.rglob("*") if p.name[0] in "._" and p.name != "_manifest.json"]
    # no temp file left (the manifest lists the files); the writer lock's file stays, empty
    assert [p.name for p in hidden] == [".lock"] and hidden[0].stat().st_size == 0


def test_year_files_are_read_in_date_order_not_listing_order(bronze):
    prices = write_bronze(bronze, "ORD", "2019-12-02", 60, 3)  # spans 2019 and 2020
    # the two year files are concatenated by year, then checked/sorted by date
    featurize(windows=(3,))
    got = _silver("ORD")
    assert got["date"].is_monotonic_increasing
    np.testing.assert_allclose(got["adj_close_lag_1"].iloc[1:], prices["adj_close"].iloc[:-1])


def test_incremental_skips_unchanged_and_rebuilds_changed(bronze):
    write_bronze(bronze, "AAA", "2023-01-02", 50, 1)
    write_bronze(bronze, "BBB", "2023-01-02", 50, 2)
    first = featurize()
    assert len(first.written) == 2
    second = featurize()
    assert [r.status for r in second.results] == ["skipped", "skipped"]
    # new days arrive for BBB (its year file is rewritten)
    write_bronze(bronze, "BBB", "2023-01-02", 70, 2)
    third = featurize()
    assert {r.ticker: r.status for r in third.results} == {"AAA": "skipped", "BBB": "written"}
    assert len(_silver("BBB")) == 70
    # other parameters -> rebuilt; force -> rebuilt
    assert len(featurize(windows=(10, 20)).written) == 2
    assert "returns_mean_20" in _silver("AAA").columns
    assert len(featurize(windows=(10, 20), force=True).written) == 2


def test_corrupt_file_fails_only_its_ticker(bronze):
    write_bronze(bronze, "AAA", "2023-01-02", 30, 1)
    write_bronze(bronze, "BAD", "2023-01-02", 30, 2)
    broken = bronze / "ticker=BAD" / "year=2023" / "part-0.parquet"
    broken.write_bytes(b"this is not parquet")
    report = featurize(scheduler="synchronous")
    assert [r.ticker for r in report.written] == ["AAA"]
    assert [r.ticker for r in report.failures] == ["BAD"]
    assert str(broken) in report.failures[0].error
    assert not (silver_features_dir(get_settings()) / "ticker=BAD").exists()


def test_threads_and_processes_give_identical_files(bronze, tmp_path):
    for i, ticker in enumerate(["A", "B", "C"]):
        write_bronze(bronze, ticker, "2022-01-03", 120, i)
    featurize(scheduler="threads", silver_dir=tmp_path / "t", bronze_dir=bronze)
    featurize(scheduler="processes", silver_dir=tmp_path / "p", bronze_dir=bronze)
    files = sorted(p.relative_to(tmp_path / "t") for p in (tmp_path / "t").rglob("part-*"))
    assert files == sorted(p.relative_to(tmp_path / "p") for p in (tmp_path / "p").rglob("part-*"))
    assert len(files) == 3  # one year (2022) per ticker: one block each
    for name in files:
        assert pq.read_table(tmp_path / "t" / name).equals(pq.read_table(tmp_path / "p" / name))


def test_selected_tickers_and_progress(bronze):
    for i, ticker in enumerate(["A", "B", "C"]):
        write_bronze(bronze, ticker, "2022-01-03", 20, i)
    seen = []
    report = featurize(
        tickers=["C", "A"], progress=lambda result, done, total: seen.append((done, total))
    )
    assert [r.ticker for r in report.results] == ["A", "C"]
    assert sorted(seen) == [(1, 2), (2, 2)]
    listed = sorted(os.listdir(silver_features_dir(get_settings())))
    assert listed == [".lock", "_manifest.json", "ticker=A", "ticker=C"]  # .lock: the writer's


def test_errors(bronze):
    with pytest.raises(DataError, match="mlfactory data ingest"):
        featurize()
    write_bronze(bronze, "AAA", "2023-01-02", 10, 1)
    with pytest.raises(DataError, match=r"unknown ticker\(s\) ZZZ.*holds 1 ticker\(s\): AAA"):
        featurize(tickers=["ZZZ"])
    with pytest.raises(ConfigError, match="threads, processes, synchronous"):
        featurize(scheduler="fastest")


def test_cli_featurize_summary_and_failure_exit_code(bronze):
    from typer.testing import CliRunner

    from mlfactory.cli import app

    write_bronze(bronze, "AAA", "2023-01-02", 40, 1)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "featurize", "--windows", "5,10", "--horizon", "2"])
    assert result.exit_code == 0, result.output
    assert "tickers written" in result.output and "40" in result.output
    assert {"returns_mean_5", "returns_mean_10"} <= set(_silver("AAA").columns)
    again = runner.invoke(app, ["data", "featurize", "--windows", "5,10", "--horizon", "2"])
    assert again.exit_code == 0 and "unchanged" in again.output
    write_bronze(bronze, "BAD", "2023-01-02", 10, 2)
    (bronze / "ticker=BAD" / "year=2023" / "part-0.parquet").write_bytes(b"junk")
    failed = runner.invoke(app, ["data", "featurize"])
    assert failed.exit_code == 1 and "failed tickers" in failed.output and "BAD" in failed.output
    bad_windows = runner.invoke(app, ["data", "featurize", "--windows", "ten"])
    assert bad_windows.exit_code == 2 and "--windows" in bad_windows.output


def test_wrong_shape_and_duplicate_days_fail_with_the_file_named(bronze):
    write_bronze(bronze, "OK", "2023-01-02", 20, 1)
    write_bronze(bronze, "NOADJ", "2023-01-02", 20, 2)
    lacking = bronze / "ticker=NOADJ" / "year=2023" / "part-0.parquet"
    pq.write_table(pq.read_table(lacking).drop_columns(["adj_close"]), lacking)
    write_bronze(bronze, "DUP", "2023-01-02", 20, 3)
    extra = bronze / "ticker=DUP" / "year=2024" / "part-0.parquet"
    extra.parent.mkdir()
    pq.write_table(pq.read_table(bronze / "ticker=DUP" / "year=2023" / "part-0.parquet"), extra)
    report = featurize(scheduler="synchronous")
    errors = {r.ticker: r.error for r in report.failures}
    assert [r.ticker for r in report.written] == ["OK"]
    assert str(lacking) in errors["NOADJ"] and "lacks column(s) adj_close" in errors["NOADJ"]
    assert "duplicate dates (2023-01-02" in errors["DUP"]
