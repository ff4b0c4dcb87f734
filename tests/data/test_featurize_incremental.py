"""Incremental silver: new days rewrite only the year blocks they touch, and the store then
equals a full rebuild value for value (including across a year boundary)."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _incremental import HORIZON, STARTS, WINDOWS
from _incremental import ingest_until as _ingest

from mlfactory.data import BronzeStore, SyntheticSource, compute_features, featurize
from mlfactory.data import load_features as load
from mlfactory.data._layout import parse_silver_name


def _files(silver: Path) -> dict[tuple, tuple[str, int]]:
    """(ticker, first year, last year) -> (file, mtime): one file per block, old ones deleted."""
    found = {}
    for path in silver.rglob("part-*"):
        name = path.relative_to(silver).as_posix()
        key = parse_silver_name(name)
        assert key is not None and key not in found, name
        found[key] = (name, path.stat().st_mtime_ns)
    return found


def test_new_days_rewrite_only_their_blocks_and_equal_a_full_rebuild(tmp_path):
    bronze, silver, full = tmp_path / "bronze", tmp_path / "silver", tmp_path / "full"
    kw = {"bronze_dir": bronze, "windows": WINDOWS, "horizon": HORIZON, "scheduler": "synchronous"}
    # compact: new days rewrite blocks, never the delta (test_featurize_delta.py covers that)
    incremental = {**kw, "compact": True}
    steps = [
        # end, blocks written by the incremental run (ticker, first, last)
        (date(2022, 12, 28), {"A": [(2021, 2021), (2022, 2022)]}),
        (date(2022, 12, 30), {"A": [(2022, 2022)], "B": [(2022, 2022)]}),  # B is new
        # first days of 2023: the new block, and 2022's last targets (they look 5 days ahead)
        (date(2023, 1, 3), {"A": [(2022, 2022), (2023, 2023)], "B": [(2022, 2022), (2023, 2023)]}),
        (date(2023, 1, 5), {"A": [(2022, 2022), (2023, 2023)], "B": [(2022, 2022), (2023, 2023)]}),
        (date(2023, 2, 28), {"A": [(2022, 2022), (2023, 2023)], "B": [(2022, 2022), (2023, 2023)]}),
        # 2023's first 5 days were all known already: 2022 stays as it is
        (date(2023, 3, 31), {"A": [(2023, 2023)], "B": [(2023, 2023)]}),
    ]
    for end, expected in steps:
        _ingest(bronze, end)
        before = _files(silver)
        report = featurize(silver_dir=silver, **incremental)
        assert report.ok
        written = {r.ticker: sorted(r.entries) for r in report.written}
        assert written == expected, end
        after = _files(silver)
        touched = {key for key, file in after.items() if before.get(key) != file}
        assert touched == {(t, a, b) for t, blocks in expected.items() for a, b in blocks}
        listed = json.loads((silver / "_manifest.json").read_text())["partitions"]
        assert sorted(listed) == sorted(name for name, _ in after.values())
        assert featurize(silver_dir=full, force=True, **kw).ok
        got, want = load(silver_dir=silver), load(silver_dir=full)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert featurize(silver_dir=silver, **incremental).blocks_written == 0  # nothing new
    # and the rebuild is the features of the whole history, computed in one go
    prices = BronzeStore(bronze).read()
    for ticker in STARTS:
        whole = compute_features(prices[prices["ticker"] == ticker], WINDOWS, HORIZON)
        mine = want[want["ticker"] == ticker].reset_index(drop=True)
        for column in ("returns_mean_20", "returns", "target", "close_lag_1"):
            pd.testing.assert_series_equal(
                mine[column], whole[column], check_exact=True, check_dtype=False
            )
    # a forced run keeps the layout it finds and rewrites every block
    blocks = sorted(_files(silver))
    forced = featurize(silver_dir=silver, force=True, **kw)
    assert forced.blocks_written == len(blocks) == 5 and sorted(_files(silver)) == blocks
    # a corrected day in an older year: its block and the blocks that see it are rebuilt
    fixed = SyntheticSource(seed=3).fetch("A", date(2022, 12, 30), date(2022, 12, 30))
    fixed["Adj Close"] *= 1.5
    BronzeStore(bronze, fsync=False).write_ticker("A", fixed, "E", "e")
    report = featurize(silver_dir=silver, **incremental)
    assert {r.ticker: sorted(r.entries) for r in report.written} == {
        "A": [(2022, 2022), (2023, 2023)]
    }
    assert featurize(silver_dir=full, force=True, **kw).ok
    pd.testing.assert_frame_equal(load(silver_dir=silver), load(silver_dir=full), check_exact=True)


def test_an_older_one_file_store_is_read_then_rebuilt_in_blocks(tmp_path, caplog):
    bronze, silver = tmp_path / "bronze", tmp_path / "silver"
    _ingest(bronze, date(2023, 1, 31))
    assert featurize(bronze_dir=bronze, silver_dir=silver).ok
    expected = load(silver_dir=silver)
    # the layout of an older mlfactory: one file per ticker, listed in the manifest
    manifest = json.loads((silver / "_manifest.json").read_text())
    for ticker in STARTS:
        folder = silver / f"ticker={ticker}"
        blocks = sorted(folder.glob("part-*.parquet"))
        pq.write_table(
            pa.concat_tables(pq.read_table(p) for p in blocks), folder / "part-0.parquet"
        )
        for block in blocks:
            block.unlink()
    old = {"version": 1, "windows": [10], "horizon": 1, "sources": []}
    manifest["partitions"] = {
        f"ticker={t}/part-0.parquet": {"rows": 1, "fingerprint": old} for t in STARTS
    }
    (silver / "_manifest.json").write_text(json.dumps(manifest))
    pd.testing.assert_frame_equal(load(silver_dir=silver), expected, check_exact=True)

    with caplog.at_level(logging.WARNING, logger="mlfactory"):
        report = featurize(bronze_dir=bronze, silver_dir=silver)
    assert report.ok and len(report.written) == 2
    warned = [r.getMessage() for r in caplog.records if "one-file layout" in r.getMessage()]
    assert len(warned) == 1 and "2 ticker(s)" in warned[0] and "\n" not in warned[0]
    assert not list(silver.rglob("part-0.parquet"))  # replaced, listed nowhere
    listed = json.loads((silver / "_manifest.json").read_text())["partitions"]
    assert sorted(listed) == sorted(name for name, _ in _files(silver).values())
    blocks = [("A", 2021, 2022), ("A", 2023, 2023), ("B", 2022, 2022), ("B", 2023, 2023)]
    assert sorted(_files(silver)) == blocks
    pd.testing.assert_frame_equal(load(silver_dir=silver), expected, check_exact=True)


@pytest.mark.parametrize("lazy", [False, True])
def test_readers_without_a_manifest_list_the_blocks(tmp_path, lazy):
    bronze, silver = tmp_path / "bronze", tmp_path / "silver"
    _ingest(bronze, date(2023, 1, 31))
    assert featurize(bronze_dir=bronze, silver_dir=silver).ok
    expected = load(silver_dir=silver)
    (silver / "_manifest.json").unlink()  # a store copied without its manifest
    got = load(silver_dir=silver, lazy=lazy)
    got = got.compute().sort_values(["ticker", "date"]).reset_index(drop=True) if lazy else got
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=not lazy)


def test_a_new_day_reads_one_bronze_year_the_previous_block_s_tail_is_its_context(
    tmp_path, monkeypatch
):
    import mlfactory.data._featurize as featurizing

    bronze, silver, full = tmp_path / "bronze", tmp_path / "silver", tmp_path / "full"
    kw = {"bronze_dir": bronze, "windows": WINDOWS, "horizon": HORIZON, "scheduler": "synchronous"}
    kw_blocks = {**kw, "compact": True}  # the new day rewrites blocks (not the delta)
    _ingest(bronze, date(2023, 3, 30))
    assert featurize(silver_dir=silver, **kw).ok
    read: list[str] = []
    real = featurizing._read_bronze_file
    monkeypatch.setattr(
        featurizing,
        "_read_bronze_file",
        lambda path, options: read.append(path) or real(path, options),
    )
    _ingest(bronze, date(2023, 3, 31))
    assert featurize(silver_dir=silver, **kw_blocks).blocks_written == 2
    assert sorted(Path(p).parent.name for p in read) == ["year=2023", "year=2023"]
    monkeypatch.undo()
    assert featurize(silver_dir=full, force=True, **kw).ok
    pd.testing.assert_frame_equal(load(silver_dir=silver), load(silver_dir=full), check_exact=True)
    # a manifest without the tails (written by an older mlfactory): the years are read instead
    manifest = json.loads((silver / "_manifest.json").read_text())
    for entry in manifest["partitions"].values():
        entry["fingerprint"].pop("tail")
    (silver / "_manifest.json").write_text(json.dumps(manifest))
    _ingest(bronze, date(2023, 4, 3))
    assert featurize(silver_dir=silver, **kw_blocks).blocks_written == 2
    assert featurize(silver_dir=full, force=True, **kw).ok
    pd.testing.assert_frame_equal(load(silver_dir=silver), load(silver_dir=full), check_exact=True)
