"""The data store on S3 (moto's server): ingest, status, featurize, read, sample, fingerprint."""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
import pyarrow.parquet as pq

from mlfactory.data import (
    BronzeStore,
    SyntheticSource,
    featurize,
    ingest,
    load_features,
    sample_features,
    store_fingerprint,
)
from mlfactory.settings import load_settings

TICKERS = pd.DataFrame(
    {"ticker": ["AAA", "BBB", "CCC"], "sector": ["E", "F", "U"], "subsector": ["e", "f", "u"]}
)
START, END = date(2021, 6, 1), date(2023, 3, 31)


class _Requests(logging.Handler):
    """Counts the HTTP requests the moto server answers (its werkzeug access log)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def count(self, needle: str = "") -> int:
        return sum(needle in line for line in self.lines)


def test_ingest_featurize_and_read_on_s3(bucket, tmp_path, monkeypatch):
    url = f"s3://{bucket}/factory"
    monkeypatch.setenv("MLFACTORY_STORE_URL", url)
    settings = load_settings()
    report = ingest(settings, TICKERS, SyntheticSource(), START, END, source_name="synthetic")
    assert report.counts["added"] == 3 and report.root == f"{url}/bronze/prices"
    store = BronzeStore.from_settings(settings)
    assert store.tickers() == ["AAA", "BBB", "CCC"] and store.years("AAA") == [2021, 2022, 2023]
    status = store.status()
    assert status.rows == len(store.read()) > 0 and status.last == END
    assert status.partitions == 9 and status.bytes > 0
    # nothing landed in the local home but nothing at all
    assert not (tmp_path / ".mlfactory" / "data").exists()

    first = featurize(settings, windows=(5,))
    assert first.ok and len(first.written) == 3
    frame = load_features(["BBB"], settings=settings)
    expected = len(SyntheticSource().fetch("BBB", START, END))
    assert len(frame) == expected and frame["date"].is_monotonic_increasing
    lazy = load_features(settings=settings, lazy=True).compute()
    assert len(lazy) == status.rows

    digest, stat = store_fingerprint(url, settings)
    assert stat["partitions"] == 9 + 6 and stat["reread"] == 0  # silver: 2 year blocks a ticker
    # a rerun with nothing new: no write, same digest, and no listing of the store at all
    requests = _Requests()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(requests)
    try:
        again = featurize(settings, windows=(5,))
        ingest(settings, TICKERS, SyntheticSource(), START, END)
    finally:
        werkzeug.removeHandler(requests)
    assert [r.status for r in again.results] == ["skipped"] * 3
    assert requests.count("list-type") == 0 and requests.count("delimiter") == 0
    assert requests.count("PUT ") == 2  # the writer lock and the manifest (last ingest time)
    assert store_fingerprint(url, settings)[0] == digest

    # new days for one ticker: only its newest partition and that ticker's features change
    ingest(settings, TICKERS.iloc[:1], SyntheticSource(), START, date(2023, 4, 28))
    third = featurize(settings, windows=(5,))
    assert {r.ticker: r.status for r in third.results} == {
        "AAA": "written",
        "BBB": "skipped",
        "CCC": "skipped",
    }
    assert [r.ticker for r in third.appended] == ["AAA"] and third.blocks_written == 0
    assert store_fingerprint(url, settings)[0] != digest
    # the new days went to the delta object: read back (eager and lazy) as a full rebuild
    full = tmp_path / "full"
    assert featurize(settings, silver_dir=full, windows=(5,), force=True).ok
    want = load_features(silver_dir=full)
    pd.testing.assert_frame_equal(load_features(settings=settings), want, check_exact=True)
    lazy = load_features(settings=settings, lazy=True).compute()
    lazy = lazy.sort_values(["ticker", "date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(lazy, want, check_exact=True, check_dtype=False)

    out = f"s3://{bucket}/samples/s.parquet"
    result = sample_features(out, n=50, seed=1, settings=settings)
    assert result.rows == 50 and result.path == out
    fs = BronzeStore(url).location.fs
    with fs.open(f"{bucket}/samples/s.parquet", "rb") as handle:
        assert pq.read_table(handle).num_rows == 50


def test_one_writer_at_a_time_on_s3(bucket, monkeypatch):
    import json
    import socket
    import subprocess
    import sys

    import pytest

    from mlfactory.exceptions import DataError

    url = f"s3://{bucket}/prices"
    settings = load_settings()
    store = BronzeStore(url, settings=settings)
    fs = store.location.fs
    with store.writer_lock():
        assert fs.exists(f"{bucket}/prices/.lock")
        with pytest.raises(DataError, match="another ingest is writing to s3://") as refused:
            ingest(BronzeStore(url), TICKERS, SyntheticSource(), START, date(2021, 6, 30))
        assert f"pid {__import__('os').getpid()}" in str(refused.value)
    assert not fs.exists(f"{bucket}/prices/.lock")  # released

    # a lock left by a process of this host that is gone is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    holder = {"host": socket.gethostname(), "pid": int(dead), "started": "2026-01-01T00:00:00"}
    fs.pipe_file(f"{bucket}/prices/.lock", json.dumps(holder).encode())
    report = ingest(BronzeStore(url), TICKERS, SyntheticSource(), START, date(2021, 6, 30))
    assert report.counts["added"] == 3 and not fs.exists(f"{bucket}/prices/.lock")
    # one of another host is not: it is named, to delete
    fs.pipe_file(f"{bucket}/prices/.lock", json.dumps({**holder, "host": "elsewhere"}).encode())
    with pytest.raises(DataError, match="host elsewhere"):
        ingest(BronzeStore(url), TICKERS, SyntheticSource(), START, date(2021, 7, 30))
