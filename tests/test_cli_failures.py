"""Every failure of the command line: one ``error:`` line (plus one ``hint:``), a documented code.

The dead-database sweep runs every command that touches the database against a PostgreSQL URL
on a closed port and against the real test server with a wrong password.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from _postgres import free_port
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.cli._common import MlfactoryGroup
from mlfactory.exceptions import (
    EXIT_INTERNAL,
    EXIT_TERMINATED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from mlfactory.logs import LOG_BACKUPS, LOG_FILE_NAME, ROOT_LOGGER

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SPEC = """
name = "sweep"
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


def _error_lines(result) -> list[str]:
    """stderr, asserted to be one ``error:`` line and at most one ``hint:`` line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output, result.output
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) <= 2, result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
    return lines


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC)
    sample = tmp_path / "sample.csv"
    sample.write_text("x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    return {"spec": str(spec), "csv": str(sample), "out": str(tmp_path / "out")}


def _commands(files: dict[str, str]) -> list[list[str]]:
    """Every command that reads or writes the database, with arguments that reach it."""
    return [
        ["train", files["spec"]],
        ["runs", "list"],
        ["runs", "show", "0123abcd"],
        ["runs", "compare", "0123abcd", "4567ef01"],
        ["runs", "reap"],
        ["runs", "gc"],
        ["ui"],
        ["promote", "0123abcd", "--name", "credit"],
        ["promote", "--best", "sweep", "--name", "credit"],
        ["models", "list"],
        ["models", "show", "credit"],
        ["models", "decisions", "credit"],
        ["run", str(EXAMPLES / "credit_line.toml")],
        ["explain", "credit"],
        ["serve", "credit"],
        ["predict", "credit", "--input", files["csv"], "--output", files["out"]],
        ["dashboard"],
        ["monitor", "model", "credit"],
        ["monitor", "drift", "--reference", files["csv"], "--current", files["csv"]],
        ["db", "status"],
        ["db", "upgrade"],
    ]


@pytest.mark.parametrize("dead", ["closed-port", "wrong-password"])
def test_every_command_with_a_dead_database_is_one_line_exit_3(
    dead: str, inputs, postgres_server, monkeypatch
) -> None:
    if dead == "closed-port":
        url = f"postgresql+psycopg://ml:s3cret-pw@127.0.0.1:{free_port()}/mlfactory"
    else:
        url = postgres_server.url().replace(postgres_server.password, "s3cret-pw")
    monkeypatch.setenv("MLFACTORY_DB_URL", url)
    for command in _commands(inputs):
        started = time.monotonic()
        result = runner.invoke(app, command)
        assert result.exit_code == EXIT_UNAVAILABLE, (command, result.output)
        lines = _error_lines(result)
        assert time.monotonic() - started < 20, command  # no minutes of retries
        assert "s3cret-pw" not in result.output
        expected = "refused the login" if dead == "wrong-password" else "cannot reach the database"
        assert expected in lines[0], (command, lines)
        assert lines[1].startswith("hint: ") and "MLFACTORY_DB_URL" in lines[1]
    info = runner.invoke(app, ["info"])  # a table that says why, and the same code
    assert info.exit_code == EXIT_UNAVAILABLE and "unreachable" in info.output


def test_predict_with_an_unreachable_sql_database_is_one_line(inputs, monkeypatch) -> None:
    dead = f"postgresql+psycopg://ml:pw@127.0.0.1:{free_port()}/source"
    monkeypatch.setenv("MLFACTORY_DB_URL", dead)
    result = runner.invoke(
        app, ["predict", "credit", "--sql", "select 1", "--db-url", dead, "--output", "o"]
    )
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    _error_lines(result)


def test_train_checks_the_scheduler_before_any_work(inputs, isolated_home: Path) -> None:
    for address, code, words in (
        ("threads", EXIT_USAGE, "invalid Dask scheduler address 'threads'"),
        ("tcp://10.0.0.5", EXIT_USAGE, "SCHEME://HOST:PORT"),
        ("tcp://127.0.0.1:notaport", EXIT_USAGE, "invalid Dask scheduler address"),
        (f"tcp://127.0.0.1:{free_port()}", EXIT_UNAVAILABLE, "cannot reach the Dask scheduler"),
    ):
        result = runner.invoke(app, ["train", inputs["spec"], "--scheduler", address])
        assert result.exit_code == code, (address, result.output)
        assert words in _error_lines(result)[0], result.stderr
    # nothing was done: no tracking store, no data cached
    assert not (isolated_home / "mlfactory.db").exists()


def test_the_settings_scheduler_is_checked_too(inputs, monkeypatch) -> None:
    monkeypatch.setenv("MLFACTORY_DASK_SCHEDULER_ADDRESS", "scheduler.internal")
    result = runner.invoke(app, ["train", inputs["spec"]])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "'scheduler.internal'" in _error_lines(result)[0]


def _buggy_app() -> typer.Typer:
    """The real root callback and error mapping, with one command that has a bug."""
    from mlfactory.cli._main import _root

    buggy = typer.Typer(cls=MlfactoryGroup, pretty_exceptions_enable=False)
    buggy.callback()(_root)

    @buggy.command()
    def divide(ctx: typer.Context) -> None:
        rows = 0
        print(10 / rows)

    @buggy.command()
    def noop() -> None:
        pass

    @buggy.command()
    def piped() -> None:  # `mlfactory … | head`: head has gone when the next line is written
        raise BrokenPipeError(32, "Broken pipe")

    return buggy


def test_a_reader_that_went_away_ends_the_command_silently(isolated_home: Path) -> None:
    result = runner.invoke(_buggy_app(), ["piped"])
    assert result.exit_code == 1 and result.stderr == "", result.stderr
    assert not (isolated_home / "logs" / LOG_FILE_NAME).exists()  # no bug to log


def test_below_monitor_a_reader_that_went_away_is_not_drift(isolated_home: Path) -> None:
    """monitor keeps 1 for drift: a broken pipe there exits 2, silently too."""
    from mlfactory.cli._main import _root
    from mlfactory.cli._monitor import MonitorGroup

    root = typer.Typer(cls=MlfactoryGroup, pretty_exceptions_enable=False)
    root.callback()(_root)
    watch = typer.Typer(cls=MonitorGroup)

    @watch.command()
    def piped() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    @watch.command()
    def other() -> None:  # a group of one command runs it without its name
        pass

    root.add_typer(watch, name="monitor")
    result = runner.invoke(root, ["monitor", "piped"])
    assert result.exit_code == 2 and result.stderr == "", result.stderr


def test_an_unexpected_error_is_one_line_naming_the_log_with_the_traceback(
    isolated_home: Path,
) -> None:
    result = runner.invoke(_buggy_app(), ["divide"])
    assert result.exit_code == EXIT_INTERNAL, result.output
    error, hint = _error_lines(result)
    assert "unexpected error: ZeroDivisionError: division by zero" in error
    log_file = isolated_home / "logs" / LOG_FILE_NAME
    assert str(log_file) in hint and "--log-level DEBUG" in hint
    logged = log_file.read_text()
    assert "Traceback" in logged and "ZeroDivisionError" in logged and "print(10 / rows)" in logged

    debug = runner.invoke(_buggy_app(), ["--log-level", "DEBUG", "divide"])
    assert debug.exit_code == EXIT_INTERNAL
    assert "Traceback" in debug.stderr and "print(10 / rows)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-2].startswith("error: unexpected error")


def test_the_log_folder_stays_bounded(isolated_home: Path, monkeypatch) -> None:
    """One rotating file, not one new file per command forever."""
    monkeypatch.setattr("mlfactory.logs.LOG_MAX_BYTES", 2_000)
    buggy = _buggy_app()
    for _ in range(12):
        assert runner.invoke(buggy, ["divide"]).exit_code == EXIT_INTERNAL
        assert runner.invoke(buggy, ["noop"]).exit_code == 0
    files = sorted(p.name for p in (isolated_home / "logs").iterdir())
    assert LOG_FILE_NAME in files
    assert len(files) == 1 + LOG_BACKUPS, files
    for handler in logging.getLogger(ROOT_LOGGER).handlers:
        handler.close()


def test_monitor_keeps_1_for_drift_only(inputs, monkeypatch) -> None:
    """An outage is 3 and a bad input 2: a cron job never reads them as drift."""
    dead = f"postgresql+psycopg://ml:pw@127.0.0.1:{free_port()}/db"
    monkeypatch.setenv("MLFACTORY_DB_URL", dead)
    for command in (
        ["monitor", "model", "credit"],
        ["monitor", "drift", "--reference", inputs["csv"], "--current", inputs["csv"]],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == EXIT_UNAVAILABLE, result.output
    monkeypatch.delenv("MLFACTORY_DB_URL")
    missing = runner.invoke(app, ["monitor", "model", "nothing"])
    assert missing.exit_code == 2, missing.output
    _error_lines(missing)


def test_sigterm_during_train_kills_the_run_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "slow.toml"
    spec.write_text(
        SPEC.replace('kind = "none"', 'kind = "grid"\nparam_grid = {clf__C = %s}')
        % [round(0.01 * (i + 1), 2) for i in range(400)]
    )
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env.update(MLFACTORY_HOME=str(home), COLUMNS="100")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlfactory", "train", str(spec), "--jobs", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = sa.create_engine(f"sqlite:///{home / 'mlfactory.db'}")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.3)
            try:
                with engine.connect() as connection:
                    running = connection.exec_driver_sql(
                        "select count(*) from runs where status = 'RUNNING'"
                    ).scalar()
            except sa.exc.OperationalError:  # not created yet
                continue
            if running:
                break
        assert process.poll() is None, process.communicate()
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == EXIT_TERMINATED, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert "Traceback" not in stderr, stderr
        assert len(lines) == 1 and lines[0].startswith("error: terminated (SIGTERM)"), stderr
        with engine.connect() as connection:
            statuses = connection.exec_driver_sql(
                "select status from runs where name = 'sweep' or run_uuid in "
                "(select run_uuid from tags where key = 'mlfactory.role' and value = 'parent')"
            ).scalars()
            assert set(statuses) == {"KILLED"}
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        engine.dispose()
