"""featurize on a real dask.distributed LocalCluster gives the same files as local threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from mlfactory.data import featurize
from mlfactory.data._layout import BRONZE_SCHEMA, bronze_prices_dir
from mlfactory.settings import get_settings, load_settings


def write_bronze(root: Path, ticker: str, start: str, days: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days)
    adj = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
    frame = pd.DataFrame(
        {
            "date": dates.date,
            "open": adj,
            "high": adj * 1.02,
            "low": adj * 0.97,
            "close": adj * 1.1,
            "adj_close": adj,
            "volume": rng.integers(1, 9, days),
            "sector": "Utilities",
            "subsector": "Electric",
        }
    )
    for year, rows in frame.groupby(dates.year):
        folder = root / f"ticker={ticker}" / f"year={year}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pandas(rows, schema=BRONZE_SCHEMA, preserve_index=False),
            folder / "part-0.parquet",
        )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # distributed: port/dashboard notices
def test_local_cluster_output_identical_to_local_threads(tmp_path, monkeypatch):
    bronze = bronze_prices_dir(get_settings())
    tickers = [f"T{i:02d}" for i in range(6)]
    for i, ticker in enumerate(tickers):
        write_bronze(bronze, ticker, "2021-06-01", 300 + 10 * i, i)
    local = featurize(silver_dir=tmp_path / "local", bronze_dir=bronze, windows=(5, 20))
    assert local.scheduler == "threads" and len(local.written) == 6

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        # the address comes from settings, as it would on a real cluster
        monkeypatch.setenv("MLFACTORY_DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        settings = load_settings()
        assert len(cluster.workers) == 2
        done = []
        remote = featurize(
            settings,
            silver_dir=tmp_path / "cluster",
            windows=(5, 20),
            progress=lambda result, n, total: done.append(result.ticker),
        )
    assert remote.scheduler.startswith(("tcp://", "inproc://"))
    assert sorted(done) == tickers and len(remote.written) == 6
    for ticker in tickers:
        names = sorted(p.name for p in (tmp_path / "local" / f"ticker={ticker}").glob("part-*"))
        assert len(names) == 2  # two year blocks: every year but the last, the last
        a = pq.read_table(tmp_path / "local" / f"ticker={ticker}")
        b = pq.read_table(tmp_path / "cluster" / f"ticker={ticker}")
        assert a.num_rows == 300 + 10 * tickers.index(ticker)
        assert a.equals(b)
