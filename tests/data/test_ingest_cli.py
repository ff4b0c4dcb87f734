import re
from datetime import date

import pandas as pd
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.data import BronzeStore, SyntheticSource
from mlfactory.data._layout import bronze_prices_dir
from mlfactory.settings import load_settings

runner = CliRunner()


def _tickers_file(tmp_path, tickers=("AAPL", "MSFT", "XOM")):
    path = tmp_path / "tickers.csv"
    rows = [f"{t},Sector {t},Sub {t}" for t in tickers]
    path.write_text("ticker,sector,subsector\n" + "\n".join(rows) + "\n")
    return path


def _value(output: str, label: str) -> str:
    match = re.search(rf"{label}\s*│\s*([^│]+?)\s*│", output)
    assert match, f"{label!r} not in output:\n{output}"
    return match.group(1)


def _expected_rows(tickers, start, end):
    return sum(len(SyntheticSource().fetch(t, start, end)) for t in tickers)


def test_ingest_then_rerun_prints_summary(tmp_path):
    path = _tickers_file(tmp_path)
    args = ["data", "ingest", "--tickers", str(path), "--start", "2024-01-01"]
    args += ["--end", "2024-03-31"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = _expected_rows(["AAPL", "MSFT", "XOM"], date(2024, 1, 1), date(2024, 3, 31))
    assert _value(result.output, "tickers added") == "3"
    assert _value(result.output, "tickers failed") == "0"
    assert _value(result.output, "rows written") == f"{expected:,}"
    assert _value(result.output, "stored date range") == "2024-01-01 .. 2024-03-29"

    again = runner.invoke(app, args)  # nothing new: one line, not a table of zeros
    assert again.exit_code == 0, again.output
    line = " ".join(again.output.split())
    assert line.startswith("bronze store up to date: 3 tickers unchanged, stored 2024-01-01 .. ")
    assert "2024-03-29, nothing to fetch up to 2024-03-31 (synthetic;" in line, line
    assert "rows written" not in again.output

    store = BronzeStore(bronze_prices_dir(load_settings()))
    assert store.tickers() == ["AAPL", "MSFT", "XOM"]
    assert set(store.read()["sector"]) == {"Sector AAPL", "Sector MSFT", "Sector XOM"}


def test_defaults_use_the_shipped_list_and_a_fixed_synthetic_end(tmp_path):
    result = runner.invoke(app, ["data", "ingest", "--start", "2025-12-22"])
    assert result.exit_code == 0, result.output
    assert "2025-12-22 .. 2025-12-31" in result.output
    added = int(_value(result.output, "tickers added"))
    assert added >= 50
    assert _value(result.output, "rows written") == f"{added * 8:,}"  # 8 business days


def test_status_lists_tickers_and_totals(tmp_path):
    path = _tickers_file(tmp_path, ("AAPL", "MSFT"))
    runner.invoke(
        app,
        ["data", "ingest", "--tickers", str(path), "--start", "2023-11-01", "--end", "2024-02-29"],
    )
    result = runner.invoke(app, ["data", "status"])
    assert result.exit_code == 0, result.output
    expected = _expected_rows(["AAPL", "MSFT"], date(2023, 11, 1), date(2024, 2, 29))
    flat = re.sub(r"\s+", " ", result.output)
    assert "AAPL" in flat and "MSFT" in flat
    assert f"{expected:,}" in flat
    assert re.search(r"total \(2.*2023-11-01.*2024-02-29.*│\s*4\s*│", result.output, re.S)
    assert "last ingest" in flat and "synthetic" in flat


def test_status_of_an_empty_store():
    result = runner.invoke(app, ["data", "status"])
    assert result.exit_code == 0
    assert "empty" in result.output


def test_exit_code_is_1_only_when_every_ticker_failed(tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    path = _tickers_file(tmp_path, ("AAPL", "MSFT"))
    base = ["data", "ingest", "--tickers", str(path), "--source", "csv", "--csv-dir", str(csv_dir)]
    result = runner.invoke(app, base)
    assert result.exit_code == 1
    assert _value(result.output, "tickers failed") == "2"
    assert "failed tickers" in result.output and "AAPL.csv" in re.sub(r"\s+", "", result.output)

    frame = SyntheticSource().fetch("AAPL", date(2024, 1, 1), date(2024, 1, 31))
    frame.to_csv(csv_dir / "AAPL.csv", index=False)
    result = runner.invoke(app, [*base, "--start", "2024-01-01"])
    assert result.exit_code == 0, result.output
    assert _value(result.output, "tickers added") == "1"
    assert _value(result.output, "tickers failed") == "1"
    assert _value(result.output, "rows written") == str(len(frame))


def test_csv_source_without_folder_is_a_one_line_configuration_error():
    result = runner.invoke(app, ["data", "ingest", "--source", "csv"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--csv-dir" in lines[0]


def test_bad_tickers_file_and_dates_are_reported(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nApple\n")
    result = runner.invoke(app, ["data", "ingest", "--tickers", str(bad)])
    assert result.exit_code == 1 and "no ticker column" in result.output
    result = runner.invoke(app, ["data", "ingest", "--start", "2024-02-01", "--end", "2024-01-01"])
    assert result.exit_code == 2 and "after end" in result.output
    result = runner.invoke(app, ["data", "ingest", "--source", "reuters"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["data", "ingest", "--tickers", str(bad), "--source", "yfinance"])
    assert result.exit_code == 1 and "no ticker column" in result.output  # the file comes first
    good = _tickers_file(tmp_path)
    result = runner.invoke(app, ["data", "ingest", "--tickers", str(good), "--source", "yfinance"])
    assert result.exit_code == 2 and "pip install 'mlfactory[yfinance]'" in result.output


def test_help_lists_sources_and_defaults():
    result = runner.invoke(app, ["data", "ingest", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    flat = re.sub(r"\s+", " ", result.output)
    for name in ("synthetic", "yfinance", "csv"):
        assert name in flat
    assert "2025-12-31" in flat and "mlfactory[yfinance]" in flat
    assert "data" in runner.invoke(app, ["data", "--help"]).output


def test_read_back_matches_cli_ingest(tmp_path):
    path = _tickers_file(tmp_path, ("JPM",))
    runner.invoke(
        app,
        ["data", "ingest", "--tickers", str(path), "--start", "2022-01-01", "--end", "2022-12-31"],
    )
    stored = BronzeStore(bronze_prices_dir(load_settings())).read()
    source = SyntheticSource().fetch("JPM", date(2022, 1, 1), date(2022, 12, 31))
    assert stored["close"].tolist() == source["Close"].tolist()
    assert stored["date"].tolist() == pd.to_datetime(source["Date"]).tolist()


def test_status_shows_a_corrupt_file_on_its_ticker_only(tmp_path):
    path = _tickers_file(tmp_path, ("AAPL", "MSFT"))
    args = ["data", "ingest", "--tickers", str(path), "--start", "2024-01-01"]
    assert runner.invoke(app, [*args, "--end", "2024-01-31"]).exit_code == 0
    store = BronzeStore(bronze_prices_dir(load_settings()))
    store.partition_path("MSFT", 2024).write_bytes(b"garbage")
    result = runner.invoke(app, ["data", "status"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    # the error cell may wrap on narrow terminals: its first words sit on the ticker's line
    assert "ticker=MSFT" in result.output and "not a readable" in lines["MSFT"]
    assert "not a readable" not in lines["AAPL"] and "2024-01-31" in lines["AAPL"]
