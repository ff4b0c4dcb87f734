"""Kill ``ingest`` with SIGKILL part-way through: the store stays readable, a rerun completes it."""

import os
import signal
import subprocess
import sys
import time
from datetime import date

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mlfactory.data import BronzeStore, SyntheticSource, ingest
from mlfactory.data._layout import BRONZE_SCHEMA

START, END = date(2015, 1, 1), date(2025, 12, 31)
N_TICKERS = 100  # x 11 years = 1,100 partitions: seconds of writing, killed after 150
SCRIPT = """
import sys
from datetime import date
import pandas as pd
from mlfactory.data import BronzeStore, SyntheticSource, ingest
names = [f"T{i:03d}" for i in range(int(sys.argv[2]))]
tickers = pd.DataFrame({"ticker": names, "sector": "S", "subsector": "SS"})
ingest(BronzeStore(sys.argv[1]), tickers, SyntheticSource(), date(2015, 1, 1), date(2025, 12, 31))
print("finished")
"""


def _tickers(n):
    names = [f"T{i:03d}" for i in range(n)]
    return pd.DataFrame({"ticker": names, "sector": "S", "subsector": "SS"})


def _visible_parts(root):
    return [p for p in root.glob("ticker=*/year=*/*.parquet") if not p.name.startswith((".", "_"))]


def test_sigkill_mid_ingest_leaves_a_readable_store_and_rerun_completes(tmp_path):
    root = tmp_path / "prices"
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(root), str(N_TICKERS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while len(_visible_parts(root)) < 150:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "ingest wrote nothing in 120 s"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    store = BronzeStore(root)
    visible = _visible_parts(root)
    assert 150 <= len(visible) < N_TICKERS * 11  # killed part-way
    for path in visible:  # every file a reader can see is whole
        table = pq.read_table(path, partitioning=None)
        assert table.schema.equals(BRONZE_SCHEMA, check_metadata=False)
        assert table.num_rows > 0
    rows_after_kill = ds.dataset(root, format="parquet", partitioning="hive").count_rows()
    assert 0 < rows_after_kill == sum(pq.read_metadata(p).num_rows for p in visible)

    rerun = BronzeStore(root, fsync=False)
    report = ingest(rerun, _tickers(N_TICKERS), SyntheticSource(), START, END)
    assert report.counts["failed"] == 0
    assert report.count("unchanged") <= len(visible) // 11  # only fully written tickers
    assert not list(root.rglob(".*.tmp"))  # stale temp files of the killed run are gone

    one_ticker = len(SyntheticSource().fetch("T000", START, END))
    expected = sum(len(SyntheticSource().fetch(t, START, END)) for t in _tickers(N_TICKERS).ticker)
    assert expected == N_TICKERS * one_ticker  # same business days for every ticker
    assert store.status().rows == expected
    combined = store.read()
    assert len(combined) == expected
    assert not combined.duplicated(["ticker", "date"]).any()
    clean = BronzeStore(tmp_path / "clean", fsync=False)
    ingest(clean, _tickers(5), SyntheticSource(), START, END)
    pd.testing.assert_frame_equal(
        combined[combined["ticker"].isin(_tickers(5).ticker)].reset_index(drop=True), clean.read()
    )
