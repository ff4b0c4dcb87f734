"""The silver delta: new days that only extend a ticker's last year go to one shared file, and
every reader (eager, lazy, without the manifest) still sees exactly a full rebuild."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _incremental import HORIZON, WINDOWS, ingest_until

import mlfactory.data._append as appending
from mlfactory.data import BronzeStore, SyntheticSource, featurize, store_fingerprint
from mlfactory.data import load_features as load
from mlfactory.data._layout import parse_silver_name


def _blocks(silver: Path) -> dict[tuple, tuple[str, int]]:
    """(ticker, first, last) -> (file, mtime) of every block file on disk."""
    return {
        parse_silver_name(p.relative_to(silver).as_posix()): (p.name, p.stat().st_mtime_ns)
        for p in silver.glob("ticker=*/part-*.parquet")
    }


def _deltas(silver: Path) -> list[str]:
    return sorted(p.name for p in silver.glob("_delta/*.parquet"))


def _listed(silver: Path) -> dict:
    return json.loads((silver / "_manifest.json").read_text())["partitions"]


def _delta_entry(silver: Path) -> dict | None:
    found = [e for n, e in _listed(silver).items() if n.startswith("_delta/")]
    assert len(found) <= 1
    return found[0] if found else None


def _assert_rebuild(silver: Path, full: Path, kw: dict) -> None:
    """Eager and lazy reads equal a forced full rebuild, value for value; the delta file is
    sorted by ticker, then date."""
    for name in _deltas(silver):
        keys = pq.read_table(silver / "_delta" / name, columns=["ticker", "date"]).to_pandas()
        pd.testing.assert_frame_equal(keys, keys.sort_values(["ticker", "date"], ignore_index=True))
    shutil.rmtree(full, ignore_errors=True)
    assert featurize(silver_dir=full, force=True, **kw).ok
    want = load(silver_dir=full)
    pd.testing.assert_frame_equal(load(silver_dir=silver), want, check_exact=True)
    lazy = load(silver_dir=silver, lazy=True).compute()
    lazy = lazy.sort_values(["ticker", "date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(lazy, want, check_exact=True, check_dtype=False)
    since = load(silver_dir=silver, start="2023-03-29", columns=["target", "returns_mean_20"])
    pd.testing.assert_frame_equal(
        since, load(silver_dir=full, start="2023-03-29", columns=["target", "returns_mean_20"])
    )


@pytest.fixture
def stores(tmp_path):
    bronze, silver, full = tmp_path / "bronze", tmp_path / "silver", tmp_path / "full"
    kw = {"bronze_dir": bronze, "windows": WINDOWS, "horizon": HORIZON, "scheduler": "synchronous"}
    ingest_until(bronze, date(2023, 3, 30))
    assert featurize(silver_dir=silver, **kw).blocks_written == 4
    return bronze, silver, full, kw


def test_new_days_append_to_one_delta_file_and_blocks_stay(stores):
    bronze, silver, full, kw = stores
    blocks = _blocks(silver)
    digest = store_fingerprint(silver)[0]
    for end in (date(2023, 3, 31), date(2023, 4, 4)):  # one day, then two
        ingest_until(bronze, end)
        report = featurize(silver_dir=silver, **kw)
        assert report.ok and report.blocks_written == 0
        assert sorted(r.ticker for r in report.appended) == ["A", "B"]
        assert _blocks(silver) == blocks  # no block file touched
        assert len(_deltas(silver)) == 1  # the previous delta is gone
        entry = _delta_entry(silver)
        assert entry is not None and sorted(entry["tickers"]) == ["A", "B"]
        # the delta supersedes each block's last HORIZON rows (their targets look at new days)
        for ticker, info in entry["tickers"].items():
            rows = _listed(silver)[info["block"]]["rows"]
            dates = load(ticker, silver_dir=silver)["date"]
            dates = dates[dates.dt.year == 2023].reset_index(drop=True)
            assert info["from"] == str(dates.iloc[rows - HORIZON].date())
        _assert_rebuild(silver, full, kw)
        assert store_fingerprint(silver)[0] != digest  # the line's cache key sees new days
        digest = store_fingerprint(silver)[0]
    nothing = featurize(silver_dir=silver, **kw)
    assert len(nothing.skipped) == 2 and not nothing.appended
    assert store_fingerprint(silver)[0] == digest


def test_older_changes_rewrite_blocks_and_the_delta_keeps_what_is_still_true(stores):
    bronze, silver, full, kw = stores
    ingest_until(bronze, date(2023, 3, 31))
    assert len(featurize(silver_dir=silver, **kw).appended) == 2
    store = BronzeStore(bronze, fsync=False)
    # a corrected day far back in 2022: A's 2022 block is rewritten, its 2023 delta still holds
    fixed = SyntheticSource(seed=3).fetch("A", date(2022, 6, 1), date(2022, 6, 1))
    fixed["Adj Close"] *= 1.5
    store.write_ticker("A", fixed, "E", "e")
    report = featurize(silver_dir=silver, **kw)
    assert {r.ticker: sorted(r.entries) for r in report.written} == {"A": [(2021, 2022)]}
    assert sorted(_delta_entry(silver)["tickers"]) == ["A", "B"]
    _assert_rebuild(silver, full, kw)
    # a corrected day of the last year is no plain append: the block is rewritten, A leaves
    fixed = SyntheticSource(seed=3).fetch("A", date(2023, 2, 1), date(2023, 2, 1))
    fixed["Close"] *= 1.5
    store.write_ticker("A", fixed, "E", "e")
    report = featurize(silver_dir=silver, **kw)
    assert {r.ticker: sorted(r.entries) for r in report.written} == {"A": [(2023, 2023)]}
    assert sorted(_delta_entry(silver)["tickers"]) == ["B"] and len(_deltas(silver)) == 1
    _assert_rebuild(silver, full, kw)
    # only A featurized: B's rows stay in the delta
    ingest_until(bronze, date(2023, 4, 3))
    report = featurize(silver_dir=silver, tickers=["A"], **kw)
    assert [r.ticker for r in report.appended] == ["A"]
    assert sorted(_delta_entry(silver)["tickers"]) == ["A", "B"]
    featurize(silver_dir=silver, **kw)
    _assert_rebuild(silver, full, kw)


def test_a_full_delta_and_compact_fold_it_into_the_blocks(stores, monkeypatch):
    bronze, silver, full, kw = stores
    monkeypatch.setattr(appending, "DELTA_MAX_ROWS", HORIZON + 2)
    ingest_until(bronze, date(2023, 3, 31))
    assert len(featurize(silver_dir=silver, **kw).appended) == 2
    ingest_until(bronze, date(2023, 4, 5))  # 3 more days: more than 7 rows in the delta
    report = featurize(silver_dir=silver, **kw)
    assert not report.appended and report.blocks_written == 2
    assert _deltas(silver) == [] and _delta_entry(silver) is None
    _assert_rebuild(silver, full, kw)
    monkeypatch.undo()
    ingest_until(bronze, date(2023, 4, 6))
    assert len(featurize(silver_dir=silver, **kw).appended) == 2
    # a forced ticker is rewritten whole and leaves the delta; the other stays in it
    forced = featurize(silver_dir=silver, tickers=["A"], force=True, **kw)
    assert forced.blocks_written == 2 and sorted(_delta_entry(silver)["tickers"]) == ["B"]
    _assert_rebuild(silver, full, kw)
    blocks = _blocks(silver)
    report = featurize(silver_dir=silver, compact=True, **kw)
    assert report.blocks_written == 1 and not report.appended
    assert _deltas(silver) == [] and _delta_entry(silver) is None
    assert {k for k, v in _blocks(silver).items() if blocks.get(k) != v} == {("B", 2023, 2023)}
    _assert_rebuild(silver, full, kw)
    assert featurize(silver_dir=silver, compact=True, **kw).blocks_written == 0


@pytest.mark.parametrize("lazy", [False, True])
def test_readers_without_the_manifest_take_the_delta_and_skip_a_stale_one(stores, lazy):
    bronze, silver, full, kw = stores
    ingest_until(bronze, date(2023, 3, 31))
    assert len(featurize(silver_dir=silver, **kw).appended) == 2
    stale = silver.parent / "stale-delta.parquet"
    shutil.copy(next(silver.glob("_delta/*.parquet")), stale)
    ingest_until(bronze, date(2023, 4, 3))
    assert len(featurize(silver_dir=silver, **kw).appended) == 2
    _assert_rebuild(silver, full, kw)
    expected = load(silver_dir=silver)
    assert featurize(silver_dir=silver, compact=True, **kw).blocks_written == 2
    ingest_until(bronze, date(2023, 4, 4))
    assert len(featurize(silver_dir=silver, **kw).appended) == 2
    expected = load(silver_dir=silver)
    # an older delta, left by an interrupted run, extends blocks that are gone: ignored
    shutil.copy(stale, silver / "_delta" / "part-00000000.parquet")
    (silver / "_manifest.json").unlink()  # a store copied without its manifest
    got = load(silver_dir=silver, lazy=lazy)
    got = got.compute().sort_values(["ticker", "date"]).reset_index(drop=True) if lazy else got
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=not lazy)


def test_an_unreadable_bronze_year_fails_its_ticker_only(stores):
    bronze, silver, _full, kw = stores
    ingest_until(bronze, date(2023, 3, 31))
    broken = next((bronze / "ticker=A" / "year=2023").glob("*.parquet"))
    broken.write_bytes(b"not parquet")
    report = featurize(silver_dir=silver, **kw)
    assert [r.ticker for r in report.failures] == ["A"]
    assert str(broken) in report.failures[0].error
    assert [r.ticker for r in report.appended] == ["B"]
    assert sorted(_delta_entry(silver)["tickers"]) == ["B"]


def test_cli_reports_appended_tickers_and_compacts():
    import re

    from typer.testing import CliRunner

    from mlfactory.cli import app
    from mlfactory.data._layout import bronze_prices_dir, silver_features_dir
    from mlfactory.settings import get_settings

    settings = get_settings()
    bronze, silver = Path(bronze_prices_dir(settings)), Path(silver_features_dir(settings))
    ingest_until(bronze, date(2023, 3, 30))
    runner = CliRunner()

    def featurize_cli(*extra: str) -> dict[str, str]:
        result = runner.invoke(app, ["data", "featurize", "--horizon", "5", *extra])
        assert result.exit_code == 0, result.output
        rows = (
            re.match(r"\W*([a-z][a-z /()]+?)\s*│\s*(\S+)", line)
            for line in result.output.splitlines()
        )
        return {m.group(1): m.group(2) for m in rows if m}

    assert featurize_cli()["year blocks written"] == "4"
    ingest_until(bronze, date(2023, 3, 31))
    shown = featurize_cli()
    assert shown["tickers appended to the delta"] == "2" and shown["year blocks written"] == "0"
    assert len(_deltas(silver)) == 1
    shown = featurize_cli("--compact")
    assert shown["tickers appended to the delta"] == "0" and shown["year blocks written"] == "2"
    assert _deltas(silver) == []
    assert "--compact" in runner.invoke(app, ["data", "featurize", "--help"]).output


def test_rows_digest_sees_every_column_and_not_the_chunks():
    import pyarrow as pa

    from mlfactory.data._delta import rows_digest

    table = pa.table(
        {
            "date": pa.array([1, 2, 3, 4], pa.int32()).cast(pa.date32()),
            "close": [1.0, float("nan"), 3.0, 4.0],
            "volume": pa.array([1, None, 3, 4], pa.int64()),
            "sector": ["a", "bb", None, "ccc"],
        }
    )
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1, 2), table.slice(3)])
    assert rows_digest(chunked, 3, 4) == (rows_digest(table, 3), rows_digest(table, 4))
    assert rows_digest(table, 3) != rows_digest(table, 4)
    for column, values in {
        "close": [1.0, float("nan"), 3.5, 4.0],
        "volume": pa.array([1, 2, 3, 4], pa.int64()),  # a null filled in
        "sector": ["a", "b", None, "ccc"],
    }.items():
        changed = table.set_column(table.schema.get_field_index(column), column, [values])
        assert rows_digest(changed, 3) != rows_digest(table, 3), column
        assert rows_digest(changed, 1) == rows_digest(table, 1), column  # row 0 is the same
    assert rows_digest(table.slice(1), 2) == rows_digest(chunked.slice(1), 2)


def test_one_featurize_writes_at_a_time_and_a_no_op_needs_no_lock(stores):
    from mlfactory.data._lock import writer_lock
    from mlfactory.exceptions import DataError
    from mlfactory.storage import open_location

    bronze, silver, full, kw = stores
    with writer_lock(open_location(silver), "featurize"):
        assert len(featurize(silver_dir=silver, **kw).skipped) == 2  # read-only: answers
        ingest_until(bronze, date(2023, 3, 31))
        with pytest.raises(DataError, match=r"another featurize is writing to .*wait for it"):
            featurize(silver_dir=silver, **kw)
        assert _deltas(silver) == []  # refused before writing anything
    assert len(featurize(silver_dir=silver, **kw).appended) == 2
    _assert_rebuild(silver, full, kw)


def test_a_featurize_that_wrote_meanwhile_is_planned_again(stores, monkeypatch):
    import contextlib

    import mlfactory.data._lock as locking

    bronze, silver, full, kw = stores
    real, raced = locking.writer_lock, []

    @contextlib.contextmanager
    def racing(root, work):
        if work == "featurize" and not raced:  # another featurize writes before our lock
            raced.append(None)
            raced[0] = featurize(silver_dir=silver, tickers=["B"], **kw)
        with real(root, work):
            yield

    monkeypatch.setattr(locking, "writer_lock", racing)
    ingest_until(bronze, date(2023, 3, 31))
    report = featurize(silver_dir=silver, **kw)
    assert [r.ticker for r in raced[0].appended] == ["B"]
    assert [r.ticker for r in report.appended] == ["A"] and len(report.skipped) == 1
    assert len(_deltas(silver)) == 1 and sorted(_delta_entry(silver)["tickers"]) == ["A", "B"]
    _assert_rebuild(silver, full, kw)


def test_sources_digest_is_the_sha256_of_compact_json_whatever_the_text():
    """The fast path writes the JSON out itself; recorded fingerprints must not change."""
    import hashlib

    from mlfactory.data._featurize import _SourceFile, _sources_digest

    def by_json(files) -> str:
        text = json.dumps([[f.name, f.token] for f in files], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    names = ["year=2024/part-0.parquet", 'odd "quoted" \\ name', "é", "tab\there", "\x7f", ""]
    tokens = ["ab" * 32, "123:1700000000.5", '"etag"', ""]
    for name in names:
        for token in tokens:
            files = [_SourceFile(2024, name, "/x", token), _SourceFile(2025, "y", "/x", token)]
            assert _sources_digest(files) == by_json(files), (name, token)
    assert _sources_digest([]) == by_json([])


def test_rows_digest_is_its_documented_layout():
    """Per column: name, values (numbers as their bytes, text as offsets from 0 and characters),
    the null mask when a null is among the rows, then ``|``; SHA-256, 32 hex digits. A change
    would make every stored ticker rewrite its block once instead of appending."""
    import hashlib

    import numpy as np
    import pyarrow as pa

    from mlfactory.data._delta import rows_digest

    table = pa.table(
        {
            "close": pa.array([1.5, None, 3.0], pa.float64()),
            "volume": pa.array([7, 8, 9], pa.int64()),
            "sector": pa.array(["ab", "", "c"], pa.string()),
        }
    )

    def by_hand(count: int) -> str:
        close = np.array([1.5, 0.0, 3.0])[:count]  # a null slot holds what the writer left: 0
        parts = [b"close", close.tobytes()]
        if count > 1:
            parts.append(np.array([False, True, False])[:count].tobytes())
        parts += [b"|", b"volume", np.array([7, 8, 9], np.int64)[:count].tobytes(), b"|"]
        ends = np.array([0, 2, 2, 3], np.int32)[: count + 1]
        parts += [b"sector", ends.tobytes(), b"abc"[: ends[-1]], b"|"]
        return hashlib.sha256(b"".join(parts)).hexdigest()[:32]

    assert rows_digest(table, 1, 2, 3) == (by_hand(1), by_hand(2), by_hand(3))
