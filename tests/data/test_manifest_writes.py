"""The bronze manifest is written once per ingest, not once per ticker: its size grows with the
store, so per-ticker writes made a one-day ingest of 500 tickers cost as much as the first."""

from __future__ import annotations

from datetime import date

import pandas as pd

import mlfactory.data._bronze as bronze_module
from mlfactory.data import BronzeStore, SyntheticSource, ingest
from mlfactory.data._manifest import read_manifest


def test_one_manifest_write_per_ingest_and_every_partition_listed(tmp_path, monkeypatch):
    tickers = pd.DataFrame({"ticker": [f"T{i}" for i in range(12)]})
    store = BronzeStore(tmp_path / "bronze", fsync=False)
    writes: list[int] = []
    real = bronze_module.write_manifest

    def counted(root, payload, **kwargs):
        writes.append(len(payload["partitions"]))
        return real(root, payload, **kwargs)

    monkeypatch.setattr(bronze_module, "write_manifest", counted)
    ingest(store, tickers, SyntheticSource(seed=1), date(2023, 11, 1), date(2024, 2, 28))
    assert len(writes) <= 2, writes  # the partitions, then the ingest's record
    manifest = read_manifest(store.location)
    assert manifest is not None and len(manifest["partitions"]) == 24  # 12 tickers x 2 years
    on_disk = {p.relative_to(store.root).as_posix() for p in store.root.rglob("part-0.parquet")}
    assert on_disk == set(manifest["partitions"])

    writes.clear()
    ingest(store, tickers, SyntheticSource(seed=1), date(2024, 2, 29), date(2024, 2, 29))
    assert len(writes) <= 2, writes
    assert BronzeStore(tmp_path / "bronze").last_dates()["T0"] == date(2024, 2, 29)


def test_a_write_outside_an_ingest_lists_its_partition_at_once(tmp_path):
    store = BronzeStore(tmp_path / "bronze", fsync=False)
    frame = SyntheticSource(seed=2).fetch("ABC", date(2024, 1, 2), date(2024, 1, 31))
    store.write_ticker("ABC", frame)
    manifest = read_manifest(store.location)
    assert manifest is not None and list(manifest["partitions"]) == [
        "ticker=ABC/year=2024/part-0.parquet"
    ]
