"""Runs never stay RUNNING: owner and heartbeat tags; readers show stale runs, writers reap them."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from _readonly_checks import browse_dashboard
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import readonly_engine
from mlfactory.settings import load_settings
from mlfactory.tracking import (
    experiment_for,
    find_stale_runs,
    open_tracking,
    owner_tags,
    reap_stale_runs,
    run_heartbeat,
    tracked_run,
)
from mlfactory.tracking._owner import HEARTBEAT_TAG, machine_id, process_start, staleness

runner = CliRunner()

SLOW_SPEC = """
name = "slow"
dataset = "breast_cancer"
preprocessing = "basic"
model = "KNN"
seed = 0
[cv]
folds = 5
scoring = ["roc_auc"]
[search]
kind = "grid"
param_grid = {{clf__n_neighbors = [{neighbors}]}}
"""

QUICK_SPEC = """
name = "quick"
dataset = "breast_cancer"
preprocessing = "basic"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "none"
"""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_owner_of_a_live_run_is_this_process():
    tags = owner_tags()
    assert tags["mlfactory.owner.pid"] == str(os.getpid())
    assert tags["mlfactory.owner.start_ticks"] == process_start(os.getpid())
    assert staleness("RUNNING", tags, timeout=60) is None
    assert staleness("FINISHED", {**tags, "mlfactory.owner.pid": "999999999"}, 60) is None


def test_same_machine_dead_or_reused_pid_is_stale():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = {**owner_tags(), "mlfactory.owner.pid": str(child.pid)}
    assert "is gone" in staleness("RUNNING", dead, timeout=1e9)
    # pid alive but started at another time: the pid was reused by another process
    reused = {**owner_tags(), "mlfactory.owner.start_ticks": "1"}
    assert "another process" in staleness("RUNNING", reused, timeout=1e9)
    # an old heartbeat does not make a live local process stale
    old = {**owner_tags(), HEARTBEAT_TAG: _iso(datetime.now(UTC) - timedelta(days=1))}
    assert staleness("RUNNING", old, timeout=60) is None


def test_other_machine_is_judged_by_its_heartbeat():
    now = datetime.now(UTC)
    remote = {
        **owner_tags(),
        "mlfactory.owner.host": "elsewhere",
        "mlfactory.owner.machine": "other-boot:1",
        "mlfactory.owner.pid": str(os.getpid()),  # a live pid here means nothing there
    }
    fresh = {**remote, HEARTBEAT_TAG: _iso(now - timedelta(seconds=30))}
    assert staleness("RUNNING", fresh, timeout=120) is None
    old = {**remote, HEARTBEAT_TAG: _iso(now - timedelta(seconds=600))}
    reason = staleness("RUNNING", old, timeout=120)
    assert "no heartbeat" in reason and "elsewhere" in reason and "120" in reason
    assert machine_id() != "other-boot:1"
    # a run another tool made (no owner tags) is never judged
    assert staleness("RUNNING", {HEARTBEAT_TAG: _iso(now - timedelta(days=9))}, 1) is None


def test_heartbeat_is_renewed_while_the_run_is_open():
    settings = load_settings()
    client = open_tracking(settings)
    experiment_id = experiment_for(client, "beats", settings)
    with tracked_run(client, experiment_id, "r", heartbeat_interval=0.2) as run_id:
        first = client.get_run(run_id).data.tags[HEARTBEAT_TAG]
        deadline = time.monotonic() + 10
        while client.get_run(run_id).data.tags[HEARTBEAT_TAG] == first:
            assert time.monotonic() < deadline, "heartbeat never renewed"
            time.sleep(0.2)
    assert client.get_run(run_id).info.status == "FINISHED"


def test_run_heartbeat_keeps_a_run_made_elsewhere_alive():
    settings = load_settings()
    client = open_tracking(settings)
    experiment_id = experiment_for(client, "beats", settings)
    run_id = client.create_run(experiment_id, tags=owner_tags()).info.run_id
    first = client.get_run(run_id).data.tags[HEARTBEAT_TAG]
    with run_heartbeat(client, run_id, interval=0.2):
        deadline = time.monotonic() + 10
        while client.get_run(run_id).data.tags[HEARTBEAT_TAG] == first:
            assert time.monotonic() < deadline, "heartbeat never renewed"
            time.sleep(0.2)
    client.set_terminated(run_id)


def test_a_line_reaps_and_its_own_run_has_an_owner_and_a_heartbeat(monkeypatch):
    from mlfactory.db import get_engine
    from mlfactory.line._run import _Context, _end_line_run, _line_run
    from mlfactory.line._spec import line_from_dict

    monkeypatch.setenv("MLFACTORY_HEARTBEAT_INTERVAL", "0.2")
    settings = load_settings()
    raw = {"name": "x", "dataset": {"name": "credit"}, "promote": {"model": "m"}}
    line = line_from_dict({**raw, "train": {"experiment": {}}})
    writer = open_tracking(settings)
    lost = writer.create_run(
        experiment_for(writer, "elsewhere", settings),
        tags={
            **owner_tags(),
            "mlfactory.owner.machine": "other-boot:1",
            HEARTBEAT_TAG: _iso(datetime.now(UTC) - timedelta(days=1)),
        },
    ).info.run_id
    ctx = _Context(line, settings, get_engine(settings.database_url), False, None)
    run_id = _line_run(ctx, dry_run=False)
    client = ctx.tracking()
    assert client.get_run(lost).info.status == "FAILED"  # reaped by the line, a writer
    assert "mlfactory run" in client.get_run(lost).data.tags["mlfactory.stale_reason"]
    tags = client.get_run(run_id).data.tags
    assert tags["mlfactory.owner.pid"] == str(os.getpid())
    assert staleness("RUNNING", tags, timeout=1) is None
    deadline = time.monotonic() + 10
    while client.get_run(run_id).data.tags[HEARTBEAT_TAG] == tags[HEARTBEAT_TAG]:
        assert time.monotonic() < deadline, "heartbeat never renewed"
        time.sleep(0.2)
    _end_line_run(ctx, run_id, "FINISHED")
    assert client.get_run(run_id).info.status == "FINISHED"


def test_runs_reap_marks_only_stale_runs_failed():
    settings = load_settings()
    client = open_tracking(settings)
    experiment_id = experiment_for(client, "reap", settings)
    now = datetime.now(UTC)
    remote = {
        "mlfactory.owner.host": "elsewhere",
        "mlfactory.owner.machine": "other-boot:1",
        "mlfactory.owner.pid": "4242",
        "mlfactory.owner.start_ticks": "77",
    }
    lost = client.create_run(
        experiment_id,
        run_name="lost",
        tags={**remote, HEARTBEAT_TAG: _iso(now - timedelta(hours=2))},
    ).info.run_id
    alive = client.create_run(
        experiment_id, run_name="alive", tags={**remote, HEARTBEAT_TAG: _iso(now)}
    ).info.run_id
    foreign = client.create_run(experiment_id, run_name="other tool").info.run_id
    assert [s.run_id for s in find_stale_runs(client, settings.stale_run_timeout)] == [lost]

    result = runner.invoke(app, ["runs", "reap"])
    assert result.exit_code == 0, result.output
    assert lost in result.output and "1 stale run(s) marked FAILED" in result.output
    run = client.get_run(lost)
    assert run.info.status == "FAILED"
    assert "no heartbeat" in run.data.tags["mlfactory.stale_reason"]
    assert "runs reap" in run.data.tags["mlfactory.stale_reason"]
    assert run.info.end_time == run.info.start_time  # its last heartbeat predates its start
    assert client.get_run(alive).info.status == "RUNNING"
    assert client.get_run(foreign).info.status == "RUNNING"
    assert reap_stale_runs(client, settings.stale_run_timeout, "test") == []


def test_runs_reap_on_an_empty_home_creates_nothing(isolated_home):
    result = runner.invoke(app, ["runs", "reap"])
    assert result.exit_code == 0, result.output
    assert "no runs to reap" in result.output
    assert not (isolated_home / "mlfactory.db").exists()


def _running_runs(url: str) -> list[str]:
    engine = readonly_engine(url)
    if engine is None:
        return []
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sa.text("select run_uuid from runs where status = 'RUNNING'")
                ).scalars()
            )
    except sa.exc.DBAPIError:  # tables not made yet
        return []


def _sqlite_bytes(settings) -> str | None:
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.slow
def test_sigkilled_train_leaves_stale_runs_that_the_next_train_fails(
    backend, tmp_path, isolated_home, monkeypatch, request
):
    if backend == "postgres":
        monkeypatch.setenv("MLFACTORY_DB_URL", request.getfixturevalue("postgres_url"))
    settings = load_settings()
    slow = tmp_path / "slow.toml"
    slow.write_text(SLOW_SPEC.format(neighbors=", ".join(str(k) for k in range(1, 400))))
    env = {k: v for k, v in os.environ.items()}
    train = subprocess.Popen(
        [sys.executable, "-m", "mlfactory", "train", str(slow)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (running := _running_runs(settings.database_url)):
            assert train.poll() is None, "train ended before it could be killed"
            assert time.monotonic() < deadline, "train never started a run"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        train.send_signal(signal.SIGKILL)
        train.wait()
    assert train.returncode == -signal.SIGKILL
    assert running == _running_runs(settings.database_url)  # left RUNNING by the kill

    before = _sqlite_bytes(settings)
    listed = runner.invoke(app, ["runs", "list", "--all"])
    assert listed.exit_code == 0, listed.output
    assert f"{len(running)} stale run(s): their process is gone" in " ".join(listed.output.split())
    shown = runner.invoke(app, ["runs", "show", running[0]])
    assert shown.exit_code == 0, shown.output
    assert f"its process {train.pid}" in shown.output and "is gone" in shown.output
    pages = browse_dashboard(settings)
    assert "RUNNING (stale)" in pages["/experiments/slow"][1]
    assert f"its process {train.pid} on" in pages[f"/runs/{running[0]}"][1]
    assert _sqlite_bytes(settings) == before  # readers only read
    assert running == _running_runs(settings.database_url)

    quick = tmp_path / "quick.toml"
    quick.write_text(QUICK_SPEC)
    result = runner.invoke(app, ["train", str(quick)])
    assert result.exit_code == 0, result.output
    assert _running_runs(settings.database_url) == []
    client = open_tracking(settings, read_only=True)
    for run_id in running:
        run = client.get_run(run_id)
        assert run.info.status == "FAILED"
        reason = run.data.tags["mlfactory.stale_reason"]
        assert f"its process {train.pid}" in reason and "mlfactory train" in reason
    quick_runs = client.search_runs([client.get_experiment_by_name("quick").experiment_id])
    assert quick_runs and {r.info.status for r in quick_runs} == {"FINISHED"}
