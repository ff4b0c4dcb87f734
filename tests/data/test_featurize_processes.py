"""featurize's default local scheduler: worker processes for a big local build, started safely."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_featurize import write_bronze

import mlfactory.data._featurize as featurizing
from mlfactory.data import featurize
from mlfactory.data._layout import bronze_prices_dir, silver_features_dir
from mlfactory.exceptions import DataError
from mlfactory.settings import get_settings

TICKERS = [f"T{i:02d}" for i in range(6)]


@pytest.fixture
def bronze(monkeypatch) -> Path:
    """Six tickers over two years; "big" from three tickers on (the threshold is 32)."""
    root = bronze_prices_dir(get_settings())
    for i, ticker in enumerate(TICKERS):
        write_bronze(root, ticker, "2022-11-01", 90 + 7 * i, i)
    monkeypatch.setattr(featurizing, "PROCESSES_MIN_TASKS", 3)
    return root


@pytest.fixture
def alone(monkeypatch) -> None:
    """As if no other thread ran in this test process (another test file's server may run
    one): featurize may fork."""
    monkeypatch.setattr(threading, "active_count", lambda: 1)


def _files(root: Path) -> dict[str, object]:
    return {str(p.relative_to(root)): pq.read_table(p) for p in sorted(root.rglob("part-*"))}


def _same_store(left: Path, right: Path) -> None:
    found, expected = _files(left), _files(right)
    assert sorted(found) == sorted(expected) and len(found) == 2 * len(TICKERS)
    for name, table in found.items():
        assert table.equals(expected[name]), name


def test_a_big_local_build_runs_in_processes_a_small_one_in_threads(bronze, tmp_path, alone):
    report = featurize()
    assert report.scheduler == "processes" and len(report.written) == len(TICKERS)
    by_threads = featurize(scheduler="threads", silver_dir=tmp_path / "threads", bronze_dir=bronze)
    assert by_threads.scheduler == "threads"
    _same_store(silver_features_dir(get_settings()), tmp_path / "threads")
    # two tickers to rebuild: below the threshold, threads
    small = featurize(tickers=TICKERS[:2], force=True)
    assert small.scheduler == "threads" and len(small.written) == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("featurize")]


def test_the_default_scheduler_rule(monkeypatch, alone):
    monkeypatch.setattr(featurizing.os, "cpu_count", lambda: 2)
    threshold = featurizing.PROCESSES_MIN_TASKS
    assert featurizing._default_scheduler(threshold, remote=False) == "processes"
    assert featurizing._default_scheduler(threshold - 1, remote=False) == "threads"
    assert featurizing._default_scheduler(500, remote=True) == "threads"  # waits on the network
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # another thread: no fork
    assert featurizing._default_scheduler(threshold, remote=False) == "threads"


def test_one_core_keeps_threads(bronze, monkeypatch, alone):
    monkeypatch.setattr(featurizing.os, "cpu_count", lambda: 1)
    assert featurize().scheduler == "threads"


def test_a_daemon_process_keeps_threads(bronze, monkeypatch, alone):
    """A daemonic process (a Dask worker's, say) may not start children."""
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    report = featurize()
    assert report.scheduler == "threads" and report.ok


def test_workers_fork_only_when_no_other_thread_runs(bronze, tmp_path, monkeypatch):
    started = []
    real_pool = featurizing._process_pool

    def pool(workers):
        made = real_pool(workers)
        started.append(made._mp_context.get_start_method())
        return made

    monkeypatch.setattr(featurizing, "_process_pool", pool)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:  # another thread runs: no fork; by default threads, processes from a forkserver
        by_default = featurize(silver_dir=tmp_path / "threads", bronze_dir=bronze)
        asked = featurize(
            silver_dir=tmp_path / "forkserver", bronze_dir=bronze, scheduler="processes"
        )
    finally:
        stop.set()
        other.join()
    assert by_default.scheduler == "threads" and asked.scheduler == "processes"
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert featurize(silver_dir=tmp_path / "fork", bronze_dir=bronze).scheduler == "processes"
    assert started == ["forkserver", "fork"]
    _same_store(tmp_path / "forkserver", tmp_path / "fork")
    _same_store(tmp_path / "threads", tmp_path / "fork")


def test_a_worker_that_dies_is_one_clear_error_and_the_store_stays_whole(
    bronze, monkeypatch, alone
):
    first = featurize()
    assert first.scheduler == "processes"
    manifest = (silver_features_dir(get_settings()) / "_manifest.json").read_bytes()

    def killed(*args, **kwargs):
        import os

        os._exit(9)

    monkeypatch.setattr(featurizing, "featurize_ticker", killed)
    with pytest.raises(DataError, match=r"worker process.*died.*--scheduler threads"):
        featurize(force=True)
    # the manifest still lists the first build, every file it names is there
    assert (silver_features_dir(get_settings()) / "_manifest.json").read_bytes() == manifest
    monkeypatch.undo()
    assert all(r.status == "skipped" for r in featurize().results)


def test_the_cli_progress_bar_starts_no_thread(bronze, monkeypatch):
    """Rich's refresh thread would keep featurize from forking its workers."""
    from typer.testing import CliRunner

    from mlfactory.cli import app

    seen = []
    real = featurizing._forkable

    def forkable() -> bool:
        seen.append(threading.active_count())
        return real()

    monkeypatch.setattr(featurizing, "_forkable", forkable)
    before = threading.active_count()
    result = CliRunner().invoke(app, ["data", "featurize"])
    assert result.exit_code == 0, result.output
    assert seen and set(seen) == {before}  # no thread of the command's own
    assert ("processes" if before == 1 else "threads") in result.output
