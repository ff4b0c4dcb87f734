import os
import subprocess
import sys
from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlfactory.data import (
    CsvSource,
    NoData,
    SourceName,
    SyntheticSource,
    YFinanceSource,
    make_source,
    normalise_yfinance_frame,
    with_retries,
)
from mlfactory.data._layout import SOURCE_COLUMNS
from mlfactory.exceptions import ConfigError, DataError


# synthetic -----------------------------------------------------------------------------------
def test_synthetic_is_deterministic_per_ticker():
    a = SyntheticSource().fetch("AAPL", date(2010, 1, 1), date(2012, 12, 31))
    b = SyntheticSource().fetch("AAPL", date(2010, 1, 1), date(2012, 12, 31))
    other = SyntheticSource().fetch("MSFT", date(2010, 1, 1), date(2012, 12, 31))
    reseeded = SyntheticSource(seed=1).fetch("AAPL", date(2010, 1, 1), date(2012, 12, 31))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(other) == len(pd.bdate_range("2010-01-01", "2012-12-31"))
    assert not np.allclose(a["Close"], other["Close"])
    assert not np.allclose(a["Close"], reseeded["Close"])


def test_synthetic_seed_does_not_depend_on_python_hash_randomisation():
    here = SyntheticSource().fetch("JPM", date(2020, 1, 1), date(2020, 1, 10))["Close"].tolist()
    code = (
        "from datetime import date; from mlfactory.data import SyntheticSource; "
        "print(SyntheticSource().fetch('JPM', date(2020,1,1), date(2020,1,10))['Close'].tolist())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(here)


@pytest.mark.parametrize("cut", [date(2013, 6, 14), date(2013, 6, 15), date(2013, 12, 31)])
def test_synthetic_fetch_a_to_c_equals_a_to_b_then_after_b(cut):
    source = SyntheticSource()
    whole = source.fetch("XOM", date(2012, 3, 1), date(2014, 2, 28))
    first = source.fetch("XOM", date(2012, 3, 1), cut)
    second = source.fetch("XOM", date.fromordinal(cut.toordinal() + 1), date(2014, 2, 28))
    pd.testing.assert_frame_equal(whole, pd.concat([first, second], ignore_index=True))


def test_synthetic_frame_contract_and_sensible_ohlcv():
    frame = SyntheticSource().fetch("KO", date(1999, 6, 1), date(2004, 12, 31))
    assert tuple(frame.columns) == SOURCE_COLUMNS
    assert frame["Date"].dtype == "datetime64[ns]"
    assert frame["Volume"].dtype == "int64"
    assert all(frame[c].dtype == "float64" for c in ("Open", "High", "Low", "Close", "Adj Close"))
    assert frame["Date"].iloc[0] == pd.Timestamp("2000-01-03")  # fixed origin
    assert (frame["Date"].dt.dayofweek < 5).all()
    assert frame["Date"].is_monotonic_increasing and frame["Date"].is_unique
    assert (frame["Low"] <= frame[["Open", "Close"]].min(axis=1)).all()
    assert (frame["High"] >= frame[["Open", "Close"]].max(axis=1)).all()
    assert (frame["Low"] > 0).all() and (frame["Volume"] > 0).all()
    factor = frame["Adj Close"] / frame["Close"]
    assert factor.between(0.3, 1.5).all()
    assert factor.diff().abs().max() < 1e-3  # slowly drifting, not noise
    daily = np.log(frame["Close"]).diff().dropna()
    assert 0.005 < daily.std() < 0.04  # the GBM volatility range of the generator


def test_synthetic_range_without_business_days_is_no_data():
    with pytest.raises(NoData, match="no business days"):
        SyntheticSource().fetch("AAPL", date(2021, 1, 2), date(2021, 1, 3))  # a weekend
    with pytest.raises(NoData):
        SyntheticSource().fetch("AAPL", date(1990, 1, 1), date(1999, 12, 31))  # before origin


# csv -----------------------------------------------------------------------------------------
def _write_csv(folder, ticker, frame):
    folder.mkdir(exist_ok=True)
    frame.to_csv(folder / f"{ticker}.csv", index=False)


def test_csv_source_reads_the_ticker_file_and_slices(tmp_path):
    original = SyntheticSource().fetch("AAPL", date(2020, 1, 1), date(2020, 3, 31))
    shuffled = original.sample(frac=1.0, random_state=0).assign(
        Date=lambda f: f["Date"].dt.strftime("%Y-%m-%d")
    )
    _write_csv(tmp_path / "csv", "AAPL", shuffled)
    got = CsvSource(tmp_path / "csv").fetch("AAPL", date(2020, 2, 1), date(2020, 2, 29))
    expected = original[original["Date"].dt.month == 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)


def test_csv_source_missing_file_names_it_and_the_columns(tmp_path):
    (tmp_path / "csv").mkdir()
    with pytest.raises(DataError) as error:
        CsvSource(tmp_path / "csv").fetch("MSFT", date(2020, 1, 1), date(2020, 2, 1))
    assert str(tmp_path / "csv" / "MSFT.csv") in str(error.value)
    assert "Adj Close" in str(error.value)


def test_csv_source_missing_column_names_file_and_expected_columns(tmp_path):
    frame = SyntheticSource().fetch("AAPL", date(2020, 1, 1), date(2020, 1, 31))
    _write_csv(tmp_path / "csv", "AAPL", frame.drop(columns=["Adj Close"]))
    with pytest.raises(DataError) as error:
        CsvSource(tmp_path / "csv").fetch("AAPL", date(2020, 1, 1), date(2020, 1, 31))
    message = str(error.value)
    assert "AAPL.csv" in message and "missing column(s) Adj Close" in message
    assert "Date, Open, High, Low, Close, Adj Close, Volume" in message


def test_csv_source_bad_numbers_are_a_data_error(tmp_path):
    frame = (
        SyntheticSource()
        .fetch("AAPL", date(2020, 1, 1), date(2020, 1, 31))
        .astype({"Open": object})
    )
    frame.loc[3, "Open"] = "n/a?"
    _write_csv(tmp_path / "csv", "AAPL", frame)
    with pytest.raises(DataError, match=r"AAPL\.csv"):
        CsvSource(tmp_path / "csv").fetch("AAPL", date(2020, 1, 1), date(2020, 1, 31))


# yfinance ------------------------------------------------------------------------------------
def _yfinance_answer(tickers=("AAPL",), tz=None):
    """What ``yf.download`` returns: (Price, Ticker) column levels and a Date index."""
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="Date", tz=tz)
    prices = ["Adj Close", "Close", "High", "Low", "Open", "Volume"]
    columns = pd.MultiIndex.from_product([prices, list(tickers)], names=["Price", "Ticker"])
    data = np.zeros((3, len(columns)))
    for j, (price, ticker) in enumerate(columns):
        base = 100.0 if ticker == "AAPL" else 50.0
        data[:, j] = {
            "Open": base,
            "High": base + 2,
            "Low": base - 2,
            "Close": base + 1,
            "Adj Close": base + 0.5,
            "Volume": 1000,
        }[price] + np.arange(3)
    return pd.DataFrame(data, index=index, columns=columns)


@pytest.mark.parametrize("tz", [None, "America/New_York"])
def test_normalise_yfinance_flattens_multiindex_and_date_index(tz):
    frame = normalise_yfinance_frame(_yfinance_answer(tz=tz), "AAPL")
    assert tuple(frame.columns) == SOURCE_COLUMNS
    expected_dates = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
    assert frame["Date"].tolist() == list(expected_dates)
    assert frame["Open"].tolist() == [100.0, 101.0, 102.0]
    assert frame["Adj Close"].tolist() == [100.5, 101.5, 102.5]
    assert frame["Volume"].tolist() == [1000, 1001, 1002]
    assert frame["Volume"].dtype == "int64"


def test_normalise_yfinance_picks_the_ticker_out_of_several():
    frame = normalise_yfinance_frame(_yfinance_answer(("AAPL", "MSFT")), "MSFT")
    assert frame["Open"].tolist() == [50.0, 51.0, 52.0]


def test_normalise_yfinance_flat_columns_and_trimming():
    flat = _yfinance_answer().droplevel("Ticker", axis=1)
    frame = normalise_yfinance_frame(flat, "AAPL", date(2024, 1, 3), date(2024, 1, 3))
    assert frame["Close"].tolist() == [102.0]


@pytest.mark.parametrize("answer", [None, pd.DataFrame()])
def test_normalise_yfinance_empty_answer_is_a_failure(answer):
    with pytest.raises(NoData, match="ZZZZ"):
        normalise_yfinance_frame(answer, "ZZZZ")


def test_normalise_yfinance_missing_column_lists_expected():
    answer = _yfinance_answer().drop(columns="Adj Close", level="Price")
    with pytest.raises(DataError, match=r"missing column.*Adj Close.*expected columns: Date"):
        normalise_yfinance_frame(answer, "AAPL")


def test_retries_back_off_exponentially_then_succeed():
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ConnectionError("reset by peer")
        return "prices"

    assert with_retries(flaky, attempts=4, base_delay=0.5, sleep=sleeps.append) == "prices"
    assert calls["n"] == 3
    assert sleeps == [0.5, 1.0]


def test_retries_give_up_after_attempts_with_the_last_error():
    sleeps: list[float] = []
    calls = {"n": 0}

    def down():
        calls["n"] += 1
        raise TimeoutError(f"timeout {calls['n']}")

    with pytest.raises(TimeoutError, match="timeout 3"):
        with_retries(down, attempts=3, base_delay=1.0, sleep=sleeps.append)
    assert sleeps == [1.0, 2.0]


def test_retries_do_not_retry_other_errors():
    sleeps: list[float] = []

    def broken():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        with_retries(broken, attempts=5, sleep=sleeps.append)
    assert sleeps == []


def test_yfinance_source_retries_and_passes_an_exclusive_end():
    calls: list[tuple] = []
    sleeps: list[float] = []

    def download(ticker, **kwargs):  # stands in for yfinance.download (not installed here)
        calls.append((ticker, kwargs))
        if len(calls) == 1:
            raise OSError("connection refused")
        return _yfinance_answer()

    source = YFinanceSource(attempts=3, base_delay=2.0, sleep=sleeps.append, download=download)
    frame = source.fetch("AAPL", date(2024, 1, 2), date(2024, 1, 4))
    assert len(frame) == 3 and sleeps == [2.0]
    ticker, kwargs = calls[-1]
    assert ticker == "AAPL"
    assert kwargs == {
        "start": "2024-01-02",
        "end": "2024-01-05",
        "auto_adjust": False,
        "progress": False,
    }


def test_yfinance_source_without_the_package_says_how_to_install():
    with pytest.raises(ConfigError, match=r"pip install 'mlfactory\[yfinance\]'"):
        YFinanceSource().fetch("AAPL", date(2024, 1, 2), date(2024, 1, 4))


# registry ------------------------------------------------------------------------------------
def test_registry_builds_sources_and_rejects_unknown_names(tmp_path):
    assert {s.value for s in SourceName} == {"synthetic", "yfinance", "csv"}
    assert isinstance(make_source("synthetic"), SyntheticSource)
    assert isinstance(make_source(SourceName.csv, csv_dir=tmp_path), CsvSource)
    with pytest.raises(ConfigError, match="synthetic, yfinance, csv"):
        make_source("bloomberg")
    with pytest.raises(ConfigError, match="--csv-dir"):
        make_source("csv")
    with pytest.raises(ConfigError, match="does not exist"):
        make_source("csv", csv_dir=tmp_path / "nope")


def _frame(**changes) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "Date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]).astype(
                "datetime64[ns]"
            ),
            "Open": [1.0, 2.0, 3.0],
            "High": [1.5, 2.5, 3.5],
            "Low": [0.5, 1.5, 2.5],
            "Close": [1.2, 2.2, 3.2],
            "Adj Close": [1.1, 2.1, 3.1],
            "Volume": np.array([10, 20, 30], dtype="int64"),
        }
    )
    for column, values in changes.items():
        frame[column] = values
    return frame


@pytest.mark.parametrize(
    "changes, start, end, short",
    [
        ({}, None, None, True),  # a source's own answer: taken as it is
        ({"Dividends": [0.0, 0.0, 0.1]}, None, None, True),  # extra columns are dropped
        ({"Date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])}, None, None, True),
        (  # time-zone aware dates are made naive by the long path
            {"Date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]).tz_localize("UTC")},
            None,
            None,
            False,
        ),
        ({}, date(2024, 1, 3), None, False),  # trimmed at the start
        ({}, None, date(2024, 1, 3), False),  # trimmed at the end
        ({"Date": pd.to_datetime(["2024-01-03", "2024-01-02", "2024-01-04"])}, None, None, False),
        ({"Date": pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-04"])}, None, None, False),
        (
            {"Date": pd.to_datetime(["2024-01-02 15:30", "2024-01-03 00:00", "2024-01-04 00:00"])},
            None,
            None,
            False,
        ),
        ({"Close": [1.2, np.nan, 3.2]}, None, None, False),
        ({"Volume": [10.0, np.nan, 30.4]}, None, None, False),
        ({"Open": ["1", "2", "3"]}, None, None, False),
    ],
)
def test_a_clean_frame_takes_the_short_path_to_the_same_answer(
    monkeypatch, changes, start, end, short
):
    import mlfactory.data._sources as sources

    frame = _frame(**changes)
    assert sources._meets_contract(frame, start, end) == short
    fast = sources.normalise_source_frame(frame.copy(), "test", start, end)
    monkeypatch.setattr(sources, "_meets_contract", lambda *args: False)
    slow = sources.normalise_source_frame(frame.copy(), "test", start, end)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert list(fast.columns) == list(sources.SOURCE_COLUMNS)
