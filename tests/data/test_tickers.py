import logging

import pytest

from mlfactory.data import default_tickers_path, load_tickers
from mlfactory.exceptions import DataError

GICS_SECTORS = {
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
}


def test_shipped_sample_is_the_default_and_covers_all_sectors():
    frame = load_tickers()
    assert list(frame.columns) == ["ticker", "sector", "subsector"]
    assert len(frame) >= 50 and frame["ticker"].is_unique
    assert set(frame["sector"]) == GICS_SECTORS
    by_ticker = frame.set_index("ticker")
    assert by_ticker.loc["AAPL", "sector"] == "Information Technology"
    assert by_ticker.loc["JPM", "subsector"] == "Diversified Banks"
    assert by_ticker.loc["XOM", "sector"] == "Energy"
    assert load_tickers(default_tickers_path()).equals(frame)


def test_our_format(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("ticker,sector,subsector\n aapl ,Tech,Hardware\nMSFT,Tech,Software\n")
    frame = load_tickers(path)
    assert frame.to_dict("records") == [
        {"ticker": "AAPL", "sector": "Tech", "subsector": "Hardware"},
        {"ticker": "MSFT", "sector": "Tech", "subsector": "Software"},
    ]


def test_wikipedia_sp500_format(tmp_path):
    path = tmp_path / "sp500.csv"
    path.write_text(
        "Symbol,Security,GICS Sector,GICS Sub-Industry,Headquarters Location,CIK\n"
        'MMM,3M,Industrials,Industrial Conglomerates,"Saint Paul, Minnesota",0000066740\n'
        'AOS,A. O. Smith,Industrials,Building Products,"Milwaukee, Wisconsin",0000091142\n'
    )
    frame = load_tickers(path)
    assert frame["ticker"].tolist() == ["MMM", "AOS"]
    assert frame["subsector"].tolist() == ["Industrial Conglomerates", "Building Products"]
    assert frame["sector"].tolist() == ["Industrials", "Industrials"]


def test_ticker_only_file_has_empty_sectors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("ticker\nAAPL\n")
    frame = load_tickers(path)
    assert frame.to_dict("records") == [{"ticker": "AAPL", "sector": "", "subsector": ""}]


def test_duplicates_are_dropped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "t.csv"
    path.write_text("ticker,sector,subsector\nAAPL,Tech,A\nMSFT,Tech,B\naapl,Other,C\n")
    logger = logging.getLogger("mlfactory.data._tickers")
    logger.addHandler(caplog.handler)  # the mlfactory logger may not propagate to the root
    try:
        frame = load_tickers(path)
    finally:
        logger.removeHandler(caplog.handler)
    assert frame["ticker"].tolist() == ["AAPL", "MSFT"]
    assert frame.loc[0, "subsector"] == "A"  # the first one is kept
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert len(warnings) == 1  # the same record may arrive twice (own handler + propagation)
    assert "dropped 1 duplicate row(s) for AAPL" in warnings.pop()


def test_missing_ticker_column_names_file_and_expected_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,sector\nApple,Tech\n")
    with pytest.raises(DataError) as error:
        load_tickers(path)
    message = str(error.value)
    assert str(path) in message and "no ticker column" in message
    assert "ticker, sector, subsector" in message and "Symbol, GICS Sector" in message


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_tickers(tmp_path / "nope.csv")
