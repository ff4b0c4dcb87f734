"""The shipped example line, PostgreSQL, and waiting for a line another run holds."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import write_synthetic
from mlfactory.db import get_engine
from mlfactory.db._tables import DRIFT_REPORTS
from mlfactory.line import read_decisions, stage_history
from mlfactory.line._records import line_lock
from mlfactory.settings import get_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "credit_line.toml"
SMALL = ("--set", "data.rows=2000", "--set", "gate.resamples=200")


def without(text: str, *sections: str) -> str:
    """The line spec text without the given ``[section]`` tables."""
    for name in sections:
        text = re.sub(rf"^\[{name}\][^\n]*\n(?:(?!\[)[^\n]*\n?)*", "", text, flags=re.M)
    return text


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400", **(env or {})})


def statuses(output: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"│ (\w+)\s+│ (ran|up to date|would run)\s", output)}


@pytest.mark.slow
def test_the_example_line_runs_every_stage_then_none(tmp_path):
    line = tmp_path / "credit_line.toml"
    shutil.copy(EXAMPLE, line)
    first = invoke("run", str(line), *SMALL)
    assert first.exit_code == 0, first.output
    stages = ["data", "dataset", "train", "gate", "promote", "explain", "monitor"]
    assert statuses(first.output) == dict.fromkeys(stages, "ran")
    engine = get_engine(get_settings().database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(DRIFT_REPORTS)).scalar()
    again = invoke("run", str(line), *SMALL)
    assert statuses(again.output) == dict.fromkeys(stages, "up to date"), again.output
    rows = invoke("run", str(line), "--set", "data.rows=2500", "--set", "gate.resamples=200")
    assert statuses(rows.output)["data"] == "ran" and statuses(rows.output)["dataset"] == "ran"


@pytest.mark.postgres
def test_the_line_on_postgresql(tmp_path, postgres_url):
    env = {"MLFACTORY_DB_URL": postgres_url}
    write_synthetic("credit", 2_000, seed=5, settings=get_settings())
    line = tmp_path / "line.toml"
    line.write_text(without(EXAMPLE.read_text(), "data", "explain", "monitor"))
    first = invoke("run", str(line), "--set", "gate.resamples=200", env=env)
    assert first.exit_code == 0, first.output
    assert set(statuses(first.output).values()) == {"ran"}
    again = invoke("run", str(line), "--set", "gate.resamples=200", env=env)
    assert set(statuses(again.output).values()) == {"up to date"}, again.output
    engine = sa.create_engine(postgres_url)
    try:
        assert [r.status for r in stage_history(engine, "credit")] == ["finished"] * 4
        (decision,) = read_decisions(engine, "credit")
        assert decision["passed"] and "no champion" in decision["reason"]
        with engine.connect() as connection:
            held = connection.exec_driver_sql("select count(*) from line_locks").scalar()
        assert held == 0
    finally:
        engine.dispose()


def test_a_second_run_waits_for_the_first(tmp_path):
    line = tmp_path / "line.toml"  # no [data]: the credit file is absent, the dataset stage fails
    line.write_text(without(EXAMPLE.read_text(), "data"))
    engine = get_engine(get_settings().database_url)
    taken = threading.Event()

    def hold() -> None:
        with line_lock(engine, "credit"):
            taken.set()
            time.sleep(2.0)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        busy = invoke("run", str(line))
        assert busy.exit_code == 75 and "is being run by" in busy.output
        started = time.perf_counter()
        waited = invoke("run", str(line), "--wait", "30")
        elapsed = time.perf_counter() - started
    finally:
        holder.join()
    assert waited.exit_code == 1 and "stage 'dataset' of line 'credit' failed" in waited.output
    assert elapsed > 1.0  # it waited for the holder, then ran (and the stage failed)


STOCKS = Path(__file__).resolve().parents[2] / "examples"
FAST_STOCKS = (
    "--set", "data.tickers=3", "--set", "data.end=2023-08-31", "--set", "promote.onnx=false",
    "--set", 'train.overrides=["search.kind=none", "cv.folds=2", "preprocessing=basic"]',
)  # fmt: skip


def test_the_stocks_line_ingests_and_featurizes_only_what_is_new(tmp_path):
    for name in ("stocks_line.toml", "stocks.toml"):
        shutil.copy(STOCKS / name, tmp_path / name)
    line = str(tmp_path / "stocks_line.toml")
    first = invoke("run", line, *FAST_STOCKS)
    assert first.exit_code == 0, first.output
    assert set(statuses(first.output).values()) == {"ran"}
    assert "3 tickers:" in first.output and "3 featurized, 0 up to date" in first.output
    again = invoke("run", line, *FAST_STOCKS)
    assert set(statuses(again.output).values()) == {"up to date"}, again.output

    wider = [*FAST_STOCKS]
    wider[1] = "data.tickers=4"  # one more ticker: only its partition is ingested and featurized
    more = invoke("run", line, *wider)
    assert more.exit_code == 0, more.output
    assert "4 tickers:" in more.output and "1 featurized, 3 up to date" in more.output
    assert statuses(more.output)["dataset"] == "ran" and statuses(more.output)["train"] == "ran"
    engine = get_engine(get_settings().database_url)
    dataset = [r for r in stage_history(engine, "stocks") if r.stage == "dataset"][-1]
    stat = dataset.key_parts["stat"]["data"]
    # the feature store's manifest says what changed: no partition was listed or read again
    assert stat["partitions"] == 4 and stat["reread"] == 0, stat
    assert stat["manifests"] and stat["rows"] > 0


def test_two_processes_running_the_same_line(tmp_path, isolated_home):
    import os
    import subprocess
    import sys

    write_synthetic("credit", 2_000, seed=5, settings=get_settings())
    line = tmp_path / "line.toml"
    line.write_text(without(EXAMPLE.read_text(), "data", "explain", "monitor"))
    cli = str(Path(sys.executable).parent / "mlfactory")
    env = {**os.environ, "MLFACTORY_HOME": str(isolated_home)}
    first = subprocess.Popen(
        [cli, "run", str(line), "--set", "gate.resamples=200"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        engine = get_engine(get_settings().database_url)
        deadline = time.monotonic() + 120
        held = None
        while held is None and first.poll() is None and time.monotonic() < deadline:
            try:
                with engine.connect() as connection:
                    held = connection.exec_driver_sql("select owner from line_locks").scalar()
            except sa.exc.OperationalError:  # no tables yet
                pass
            time.sleep(0.2)
        assert held is not None and held.endswith(f":{first.pid}")
        second = invoke("run", str(line), "--set", "gate.resamples=200")
        assert second.exit_code == 75 and f":{first.pid}" in second.output
        output, _ = first.communicate(timeout=300)
        assert first.returncode == 0, output
        third = invoke("run", str(line), "--set", "gate.resamples=200")
        assert third.exit_code == 0 and "0 stage(s) ran, 4 up to date" in third.output
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
