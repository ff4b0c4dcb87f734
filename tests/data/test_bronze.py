import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from mlfactory.data import BronzeStore, CsvSource, NoData, SyntheticSource, YFinanceSource, ingest
from mlfactory.data._layout import BRONZE_SCHEMA, bronze_prices_dir
from mlfactory.exceptions import ConfigError, DataError
from mlfactory.settings import load_settings

TICKERS = pd.DataFrame(
    {
        "ticker": ["AAA", "BBB", "CCC"],
        "sector": ["Energy", "Financials", "Utilities"],
        "subsector": ["Integrated Oil & Gas", "Diversified Banks", "Electric Utilities"],
    }
)
START = date(2019, 6, 1)


def _expected_rows(tickers, start, end):
    return sum(len(SyntheticSource().fetch(t, start, end)) for t in tickers)


def _files(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every partition file: mtime (ns), inode, size and content."""
    out = {}
    for path in sorted(root.glob("ticker=*/year=*/*.parquet")):
        stat = path.stat()
        out[str(path.relative_to(root))] = (
            stat.st_mtime_ns,
            stat.st_ino,
            stat.st_size,
            path.read_bytes(),
        )
    return out


def test_written_files_have_the_bronze_schema_and_hive_layout(tmp_path):
    store = BronzeStore(tmp_path / "prices")
    report = ingest(store, TICKERS, SyntheticSource(), START, date(2021, 3, 31))
    assert report.counts == {"added": 3, "updated": 0, "unchanged": 0, "failed": 0}
    assert store.tickers() == ["AAA", "BBB", "CCC"]
    assert store.years("AAA") == [2019, 2020, 2021]
    for path in (tmp_path / "prices").glob("ticker=*/year=*/*"):
        assert path.name == "part-0.parquet"
        schema = pq.read_schema(path)
        assert schema.equals(BRONZE_SCHEMA, check_metadata=False)
        assert schema.field("date").type == pa.date32()
        assert schema.field("volume").type == pa.int64()
        assert schema.field("adj_close").type == pa.float64()
        assert schema.field("sector").type == pa.string()
        table = pq.read_table(path, partitioning=None)
        year = int(path.parent.name.removeprefix("year="))
        assert {d.year for d in table["date"].to_pylist()} == {year}
    # pyarrow's hive discovery gives ticker and year back from the paths
    dataset = ds.dataset(tmp_path / "prices", format="parquet", partitioning="hive")
    table = dataset.to_table(filter=ds.field("ticker") == "BBB")
    assert set(table["sector"].to_pylist()) == {"Financials"}
    assert table.num_rows == _expected_rows(["BBB"], START, date(2021, 3, 31))


def test_stored_values_equal_the_source_answer(tmp_path):
    store = BronzeStore(tmp_path / "prices")
    ingest(store, TICKERS, SyntheticSource(), START, date(2020, 2, 29))
    stored = store.read(["AAA"])
    source = SyntheticSource().fetch("AAA", START, date(2020, 2, 29))
    assert stored["date"].tolist() == source["Date"].tolist()
    assert stored["close"].tolist() == source["Close"].tolist()
    assert stored["adj_close"].tolist() == source["Adj Close"].tolist()
    assert stored["volume"].tolist() == source["Volume"].tolist()
    assert set(stored["ticker"]) == {"AAA"}
    assert set(stored["subsector"]) == {"Integrated Oil & Gas"}


def test_ingest_in_two_steps_equals_one_and_rewrites_only_the_last_year(tmp_path):
    steps = BronzeStore(tmp_path / "steps", fsync=False)
    once = BronzeStore(tmp_path / "once", fsync=False)
    ingest(steps, TICKERS, SyntheticSource(), START, date(2021, 3, 15))
    before = _files(steps.root)
    report = ingest(steps, TICKERS, SyntheticSource(), START, date(2021, 9, 30))
    after = _files(steps.root)
    ingest(once, TICKERS, SyntheticSource(), START, date(2021, 9, 30))

    pd.testing.assert_frame_equal(steps.read(), once.read())
    assert len(steps.read()) == _expected_rows(TICKERS["ticker"], START, date(2021, 9, 30))
    assert report.counts["updated"] == 3
    assert all(o.years_written == (2021,) for o in report.outcomes)
    assert report.rows_added == 3 * len(pd.bdate_range("2021-03-16", "2021-09-30"))
    for name, old in before.items():
        if "year=2021" in name:
            assert after[name][1] != old[1]  # replaced by a new file
        else:
            assert after[name] == old  # mtime, inode, size and bytes untouched


def test_incremental_across_a_year_boundary(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    ingest(store, TICKERS, SyntheticSource(), START, date(2020, 12, 15))
    before = _files(store.root)
    report = ingest(store, TICKERS, SyntheticSource(), START, date(2021, 2, 1))
    assert {o.years_written for o in report.outcomes} == {(2020, 2021)}
    after = _files(store.root)
    assert all(after[n] == v for n, v in before.items() if "year=2019" in n)
    assert len(store.read()) == _expected_rows(TICKERS["ticker"], START, date(2021, 2, 1))


def test_rerun_with_nothing_new_writes_nothing(tmp_path):
    store = BronzeStore(tmp_path / "prices")
    ingest(store, TICKERS, SyntheticSource(), START, date(2020, 6, 30))
    before = _files(store.root)
    report = ingest(store, TICKERS, SyntheticSource(), START, date(2020, 6, 30))
    assert report.counts == {"added": 0, "updated": 0, "unchanged": 3, "failed": 0}
    assert report.rows_added == 0 and report.partitions_written == 0
    assert _files(store.root) == before
    # a later end on a weekend with no new business day writes nothing either
    report = ingest(store, TICKERS, SyntheticSource(), START, date(2020, 7, 5))
    assert report.counts["updated"] == 3  # 2020-07-01..03 are business days
    settled = _files(store.root)
    report = ingest(store, TICKERS, SyntheticSource(), START, date(2020, 7, 5))
    assert report.counts["unchanged"] == 3 and _files(store.root) == settled


def test_write_ticker_skips_identical_rows_and_new_rows_win(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    rows = SyntheticSource().fetch("AAA", date(2020, 1, 1), date(2020, 3, 31))
    first = store.write_ticker("AAA", rows, "Energy", "Oil")
    assert first.created and first.rows_added == len(rows) and first.years_written == (2020,)
    before = _files(store.root)
    again = store.write_ticker("AAA", rows.iloc[10:20], "Energy", "Oil")
    assert not again.changed and again.rows_added == 0
    assert _files(store.root) == before
    revised = rows.iloc[[5]].assign(Close=999.0)
    result = store.write_ticker("AAA", revised, "Energy", "Oil")
    assert result.years_written == (2020,) and result.rows_added == 0
    stored = store.read(["AAA"])
    assert len(stored) == len(rows)
    assert stored.loc[stored["date"] == rows["Date"].iloc[5], "close"].tolist() == [999.0]


def test_corrupt_file_names_it_and_other_tickers_go_on(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    ingest(store, TICKERS, SyntheticSource(), START, date(2020, 6, 30))
    bad = store.partition_path("BBB", 2020)
    bad.write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(DataError) as error:
        store.last_date("BBB")
    assert str(bad) in str(error.value)

    report = ingest(store, TICKERS, SyntheticSource(), START, date(2020, 9, 30))
    outcome = {o.ticker: o for o in report.outcomes}
    assert outcome["BBB"].status == "failed" and str(bad) in outcome["BBB"].error
    assert outcome["AAA"].status == outcome["CCC"].status == "updated"
    assert outcome["AAA"].last == date(2020, 9, 30)
    assert bad.read_bytes() == b"PAR1 this is not parquet at all"  # left for the user to see

    status = {t.ticker: t for t in store.status().tickers}
    assert str(bad) in status["BBB"].error
    assert status["AAA"].error is None and status["AAA"].last == date(2020, 9, 30)
    with pytest.raises(DataError, match="BBB"):
        store.read()
    expected = _expected_rows(["AAA", "CCC"], START, date(2020, 9, 30))
    assert len(store.read(["AAA", "CCC"])) == expected


def test_foreign_parquet_file_is_rejected_naming_it_and_the_schema(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    ingest(store, TICKERS.iloc[:1], SyntheticSource(), START, date(2020, 6, 30))
    foreign = store.partition_path("AAA", 2020)
    pq.write_table(pa.table({"date": ["2020-01-02"], "price": [1.0]}), foreign)
    with pytest.raises(DataError) as error:
        store.read_partition("AAA", 2020)
    assert str(foreign) in str(error.value) and "expected (date:date32[day]" in str(error.value)
    report = ingest(store, TICKERS.iloc[:1], SyntheticSource(), START, date(2020, 9, 30))
    assert report.all_failed


def test_stale_temp_files_are_invisible_to_readers_and_cleaned(tmp_path):
    import dask.dataframe as dd

    store = BronzeStore(tmp_path / "prices", fsync=False)
    ingest(store, TICKERS, SyntheticSource(), START, date(2020, 6, 30))
    folder = store.partition_path("AAA", 2020).parent
    stale = folder / ".part-0.parquet.deadbeef.tmp"
    stale.write_bytes(b"half a parquet file")
    expected = _expected_rows(TICKERS["ticker"], START, date(2020, 6, 30))
    dataset = ds.dataset(store.root, format="parquet", partitioning="hive")
    assert dataset.count_rows() == expected
    assert len(dd.read_parquet(store.root)) == expected  # dask sees the store, not the temp file

    # a run with nothing new writes nothing and sweeps nothing (the file is invisible anyway)
    report = ingest(store, TICKERS, SyntheticSource(), START, date(2020, 6, 30))
    assert report.temp_files_removed is None and stale.exists()
    # the next run that writes sweeps first
    report = ingest(store, TICKERS, SyntheticSource(), START, date(2020, 7, 31))
    assert report.temp_files_removed == 1 and not stale.exists()


def test_manifest_records_the_last_ingest(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    assert store.manifest() is None
    ingest(store, TICKERS, SyntheticSource(), START, date(2020, 6, 30), source_name="synthetic")
    manifest = json.loads((store.root / "_manifest.json").read_text())
    assert manifest == store.manifest()
    assert manifest["source"] == "synthetic" and manifest["end"] == "2020-06-30"
    assert manifest["added"] == 3 and manifest["rows_added"] == len(store.read())
    age = datetime.now(datetime.fromisoformat(manifest["last_ingest"]).tzinfo) - (
        datetime.fromisoformat(manifest["last_ingest"])
    )
    assert age.total_seconds() < 60
    assert store.status().last_ingest == manifest


def test_status_figures_agree_with_the_files(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    ingest(store, TICKERS, SyntheticSource(), START, date(2021, 1, 15))
    status = store.status()
    files = list(store.root.glob("ticker=*/year=*/part-0.parquet"))
    assert status.rows == len(store.read())
    assert status.bytes == sum(p.stat().st_size for p in files)
    assert status.partitions == len(files) == 9
    assert status.first == date(2019, 6, 3) and status.last == date(2021, 1, 15)
    assert [t.ticker for t in status.tickers] == ["AAA", "BBB", "CCC"]


class _Flaky:
    """A user's source that cannot serve one ticker."""

    def fetch(self, ticker, start, end):
        if ticker == "BBB":
            raise ConnectionError("upstream timed out")
        return SyntheticSource().fetch(ticker, start, end)


def test_source_failures_and_empty_answers_are_reported_not_fatal(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    tickers = pd.concat(
        [TICKERS, pd.DataFrame({"ticker": ["../EVIL"], "sector": [""], "subsector": [""]})]
    )
    report = ingest(store, tickers, _Flaky(), START, date(2020, 6, 30))
    outcome = {o.ticker: o for o in report.outcomes}
    assert outcome["BBB"].status == "failed" and "upstream timed out" in outcome["BBB"].error
    assert outcome["../EVIL"].status == "failed" and "invalid ticker" in outcome["../EVIL"].error
    assert outcome["AAA"].status == "added" and not report.all_failed
    assert store.tickers() == ["AAA", "CCC"]
    assert not (tmp_path / "EVIL").exists()

    (tmp_path / "csv").mkdir()
    empty = pd.DataFrame(columns=["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"])
    empty.to_csv(tmp_path / "csv" / "DDD.csv", index=False)
    new = pd.DataFrame({"ticker": ["DDD"], "sector": [""], "subsector": [""]})
    report = ingest(store, new, CsvSource(tmp_path / "csv"), START, date(2020, 6, 30))
    assert report.all_failed and "no rows" in report.outcomes[0].error
    assert "DDD" not in store.tickers()  # an empty answer never becomes a file


def test_existing_ticker_without_new_rows_in_the_source_is_unchanged(tmp_path):
    store = BronzeStore(tmp_path / "prices", fsync=False)
    rows = SyntheticSource().fetch("AAA", START, date(2020, 6, 30))
    (tmp_path / "csv").mkdir()
    rows.to_csv(tmp_path / "csv" / "AAA.csv", index=False)
    source = CsvSource(tmp_path / "csv")
    ingest(store, TICKERS.iloc[:1], source, START, date(2020, 6, 30))
    with pytest.raises(NoData):
        source.fetch("AAA", date(2020, 7, 1), date(2020, 12, 31))
    report = ingest(store, TICKERS.iloc[:1], source, START, date(2020, 12, 31))
    assert report.outcomes[0].status == "unchanged"


def test_a_second_writer_is_refused(tmp_path):
    store = BronzeStore(tmp_path / "prices")
    with store.writer_lock(), pytest.raises(DataError, match="another ingest"):
        ingest(BronzeStore(tmp_path / "prices"), TICKERS, SyntheticSource(), START, START)


def test_ingest_accepts_settings(isolated_home):
    settings = load_settings()
    report = ingest(settings, TICKERS.iloc[:1], SyntheticSource(), START, date(2019, 6, 30))
    assert report.root == bronze_prices_dir(settings)
    assert BronzeStore.from_settings(settings).last_date("AAA") == date(2019, 6, 28)


def test_a_misconfigured_source_stops_the_run_before_writing(tmp_path):
    store = BronzeStore(tmp_path / "prices")
    with pytest.raises(ConfigError, match="mlfactory\\[yfinance\\]"):
        ingest(store, TICKERS, YFinanceSource(), START, date(2020, 6, 30))
    assert store.tickers() == [] and store.manifest() is None
