"""A no-op ingest is decided from the bronze manifest and the sources' marks: no data read."""

from __future__ import annotations

import os
from datetime import date

import pandas as pd

from mlfactory.data import BronzeStore, CsvSource, SyntheticSource, ingest

TICKERS = pd.DataFrame({"ticker": ["AAA", "BBB"], "sector": ["E", "F"], "subsector": ["e", "f"]})


class _Counting(CsvSource):
    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.fetched: list[str] = []

    def fetch(self, ticker, start, end):
        self.fetched.append(ticker)
        return super().fetch(ticker, start, end)


def _csv(folder, ticker: str, end: date) -> None:
    frame = SyntheticSource(seed=4).fetch(ticker, date(2024, 1, 1), end)
    frame.to_csv(folder / f"{ticker}.csv", index=False)


def test_csv_files_are_read_again_only_when_they_change(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for ticker in ("AAA", "BBB"):
        _csv(folder, ticker, date(2024, 6, 28))
    store = BronzeStore(tmp_path / "bronze", fsync=False)
    today = date.today()  # the csv source's default end
    source = _Counting(folder)
    assert ingest(store, TICKERS, source, date(2024, 1, 1), today).counts["added"] == 2
    assert source.fetched == ["AAA", "BBB"]

    source = _Counting(folder)  # nothing changed: no file is read, nothing is written
    mtimes = {p: p.stat().st_mtime_ns for p in store.root.rglob("part-0.parquet")}
    report = ingest(store, TICKERS, source, date(2024, 1, 1), today)
    assert report.counts["unchanged"] == 2 and source.fetched == []
    assert mtimes == {p: p.stat().st_mtime_ns for p in store.root.rglob("part-0.parquet")}

    _csv(folder, "BBB", date(2024, 7, 31))  # new days in one file: only it is read
    os.utime(folder / "BBB.csv", ns=(1, 1))
    report = ingest(store, TICKERS, source, date(2024, 1, 1), today)
    assert source.fetched == ["BBB"] and report.counts == {
        "added": 0,
        "updated": 1,
        "unchanged": 1,
        "failed": 0,
    }
    assert store.last_dates() == {"AAA": date(2024, 6, 28), "BBB": date(2024, 7, 31)}


def test_an_earlier_end_leaves_later_rows_to_fetch(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    _csv(folder, "AAA", date(2024, 6, 28))
    store = BronzeStore(tmp_path / "bronze", fsync=False)
    source = _Counting(folder)
    ingest(store, TICKERS[:1], source, date(2024, 1, 1), date(2024, 3, 29))
    # the same file, a later end: the rows after the first end are fetched
    ingest(store, TICKERS[:1], source, date(2024, 1, 1), date.today())
    assert source.fetched == ["AAA", "AAA"] and store.last_dates()["AAA"] == date(2024, 6, 28)
    ingest(store, TICKERS[:1], source, date(2024, 1, 1), date.today())
    assert source.fetched == ["AAA", "AAA"]  # read up to today: not again


def test_a_new_store_is_indexed_from_its_first_write(tmp_path, caplog):
    """A new store lists what it writes in its manifest: the second ticker's write does not
    take the first one's partitions for an older store's and read them all again."""
    store = BronzeStore(tmp_path / "bronze", fsync=False)
    assert store.indexed  # empty: nothing on disk that the manifest does not list
    with caplog.at_level("INFO", logger="mlfactory.data._bronze"):
        report = ingest(
            store, TICKERS, SyntheticSource(seed=1), date(2023, 1, 1), date(2024, 6, 28)
        )
    assert report.counts["added"] == 2
    assert not [r for r in caplog.records if "indexed" in r.getMessage()], caplog.text
    assert BronzeStore(tmp_path / "bronze").indexed
    assert set(BronzeStore(tmp_path / "bronze").index()) == {
        f"ticker={t}/year={y}/part-0.parquet" for t in ("AAA", "BBB") for y in (2023, 2024)
    }
