"""The store's manifest is its index: partitions listed with their stats, a digest from it alone."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlfactory.data import BronzeStore, SyntheticSource, featurize, ingest, store_fingerprint
from mlfactory.exceptions import DataError

TICKERS = pd.DataFrame({"ticker": ["AAA", "BBB"], "sector": ["E", "F"], "subsector": ["e", "f"]})
START = date(2022, 11, 1)


def test_every_partition_is_listed_with_rows_bytes_and_hash(tmp_path):
    root = tmp_path / "data" / "bronze" / "prices"
    store = BronzeStore(root, fsync=False)
    ingest(store, TICKERS, SyntheticSource(), START, date(2023, 2, 28))
    manifest = json.loads((root / "_manifest.json").read_text())
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("ticker=*/year=*/*.parquet"))
    assert sorted(manifest["partitions"]) == files and len(files) == 4
    for name, entry in manifest["partitions"].items():
        data = (root / name).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["rows"] == pq.read_metadata(root / name).num_rows
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["first"] <= entry["last"] and entry["written"].endswith("+00:00")


def test_fingerprint_reads_the_manifest_only_and_moves_with_the_data(tmp_path):
    data = tmp_path / "data"
    bronze = data / "bronze" / "prices"
    ingest(BronzeStore(bronze, fsync=False), TICKERS, SyntheticSource(), START, date(2023, 1, 31))
    assert featurize(bronze_dir=bronze, silver_dir=data / "silver" / "features").ok
    digest, stat = store_fingerprint(data)  # the data root: bronze and silver manifests
    assert stat["manifests"] == ["bronze/prices/_manifest.json", "silver/features/_manifest.json"]
    assert stat["partitions"] == 4 + 4 and stat["reread"] == 0  # silver: a block per year here
    bronze_digest = store_fingerprint(bronze)[0]

    # nothing new: a rerun rewrites the manifest's ingest time, not the digest
    ingest(BronzeStore(bronze, fsync=False), TICKERS, SyntheticSource(), START, date(2023, 1, 31))
    assert store_fingerprint(bronze)[0] == bronze_digest
    # a damaged file is not re-read: the digest is the manifest's word (ingest re-checks bytes)
    (bronze / "ticker=AAA" / "year=2023" / "part-0.parquet").write_bytes(b"junk")
    assert store_fingerprint(bronze)[0] == bronze_digest
    # new days change it
    ingest(
        BronzeStore(bronze, fsync=False), TICKERS[1:], SyntheticSource(), START, date(2023, 2, 28)
    )
    assert store_fingerprint(bronze)[0] != bronze_digest
    assert store_fingerprint(data)[0] != digest


def test_a_partition_is_visible_once_the_manifest_lists_it(tmp_path):
    root = tmp_path / "prices"
    ingest(
        BronzeStore(root, fsync=False), TICKERS[:1], SyntheticSource(), START, date(2022, 12, 30)
    )
    # a writer killed between writing a new year's object and the manifest
    orphan = root / "ticker=AAA" / "year=2023" / "part-0.parquet"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes((root / "ticker=AAA" / "year=2022" / "part-0.parquet").read_bytes())
    store = BronzeStore(root)
    assert store.years("AAA") == [2022] and store.last_date("AAA") == date(2022, 12, 30)
    # the next ingest writes the year whole and lists it
    report = ingest(store, TICKERS[:1], SyntheticSource(), START, date(2023, 1, 31))
    assert report.outcomes[0].status == "updated" and store.years("AAA") == [2022, 2023]
    assert store.read(["AAA"])["date"].max() == pd.Timestamp(2023, 1, 31)


def test_an_older_store_is_listed_then_indexed_by_its_next_ingest(tmp_path):
    root = tmp_path / "prices"
    ingest(BronzeStore(root, fsync=False), TICKERS, SyntheticSource(), START, date(2023, 1, 31))
    manifest = json.loads((root / "_manifest.json").read_text())
    del manifest["partitions"]  # as an older mlfactory wrote it
    (root / "_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="no store manifest listing partitions"):
        store_fingerprint(root)
    store = BronzeStore(root)
    assert not store.indexed and store.tickers() == ["AAA", "BBB"]  # listed
    ingest(store, TICKERS, SyntheticSource(), START, date(2023, 1, 31))
    assert BronzeStore(root).indexed and store_fingerprint(root)[1]["partitions"] == 4
