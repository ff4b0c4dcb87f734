"""Readers only read: the dashboard and the reader commands create no file, no table, run no
migration, and leave the database's bytes (or PostgreSQL's schema and rows) as they were."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from _dashboard_factory import Factory
from _readonly_checks import browse_dashboard, store_fingerprint
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.settings import load_settings

runner = CliRunner()


def _reader_commands(folder: Path, run_id: str, model: str) -> list[list[str]]:
    prices = folder / "prices.csv"
    dates = pd.date_range("2021-01-01", "2023-12-31", freq="D")
    values = np.random.default_rng(0).normal(size=len(dates))
    pd.DataFrame({"date": dates, "ret": values}).to_csv(prices, index=False)
    return [
        ["info"],
        ["runs", "list", "--all"],
        ["runs", "show", run_id],
        ["models", "list"],
        ["models", "show", model],
        ["monitor", "windows", "--data", str(prices), "--column", "ret", "--date-column", "date"],
    ]


def _one_line_errors(result) -> None:
    assert "Traceback" not in result.output
    if result.exit_code not in (0, 1):  # 1: not found / drift; the message is one line
        raise AssertionError(result.output)


def test_dashboard_on_an_empty_home_creates_nothing(isolated_home):
    settings = load_settings()
    pages = browse_dashboard(settings)
    assert not isolated_home.exists()  # not the home, not the database, not a folder
    assert pages["/experiments"][0] == 200
    assert "nothing trained yet" in pages["/experiments"][1]
    assert "nothing trained yet" in pages["/models"][1]
    assert pages["/runs/" + "0" * 32][0] == 404
    assert "nothing trained yet" in pages["/runs/" + "0" * 32][1]
    assert pages["/monitoring"][0] == 200


def test_reader_commands_on_an_empty_home_create_no_database(isolated_home, tmp_path):
    for command in _reader_commands(tmp_path, "0" * 32, "credit"):
        result = runner.invoke(app, command)
        _one_line_errors(result)
    assert sorted(p.name for p in isolated_home.iterdir()) == ["logs"]  # only the log folder
    result = runner.invoke(app, ["runs", "list"])
    assert "nothing trained yet" in " ".join(result.output.split())
    result = runner.invoke(app, ["models", "show", "credit"])
    assert result.exit_code == 1 and "nothing trained yet" in " ".join(result.output.split())
    info = json.loads(runner.invoke(app, ["info", "--json"]).stdout)
    assert info["tracking"].startswith("no tracking store yet")


@pytest.mark.postgres
def test_dashboard_and_readers_on_an_empty_postgres_create_no_table(
    postgres_url, monkeypatch, tmp_path
):
    monkeypatch.setenv("MLFACTORY_DB_URL", postgres_url)
    settings = load_settings()
    before = store_fingerprint(settings)
    pages = browse_dashboard(settings)
    assert "is empty: nothing trained yet" in pages["/experiments"][1]
    for command in _reader_commands(tmp_path, "0" * 32, "credit"):
        _one_line_errors(runner.invoke(app, command))
    assert store_fingerprint(settings) == before
    with sa.create_engine(postgres_url).connect() as connection:
        assert sa.inspect(connection).get_table_names() == []


def test_populated_store_is_left_byte_for_byte(factory: Factory, tmp_path, monkeypatch):
    # a copy of the factory's home, so that no writer of this session touches it meanwhile
    with get_engine(factory.settings.database_url).connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    home = tmp_path / "home"
    shutil.copytree(
        factory.settings.home, home, ignore=shutil.ignore_patterns("*-shm", "*.init.lock")
    )
    # as a store made by stock MLflow or restored from a backup: rollback journal, no lock file
    with sqlite3.connect(home / "mlfactory.db") as connection:
        assert connection.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    connection.close()  # (the context manager only commits)
    monkeypatch.setenv("MLFACTORY_HOME", str(home))
    settings = load_settings()
    assert settings.database_url != factory.settings.database_url
    before = store_fingerprint(settings)
    assert "mlfactory.db" in before["home"]

    pages = browse_dashboard(settings)
    visited = [path for path, (status, _) in pages.items() if status == 200]
    assert any(p.startswith("/experiments/") for p in visited)
    assert any(p.startswith("/runs/") and "/artifacts/" not in p for p in visited)
    assert any("/artifacts/" in p for p in visited)
    assert any(p.startswith("/monitoring/reports/") for p in visited)
    assert "cancer" in pages["/models"][1]
    for command in _reader_commands(tmp_path, factory.result.run_id, "cancer"):
        _one_line_errors(runner.invoke(app, command))
    assert store_fingerprint(settings) == before
    assert not list(Path.cwd().glob("file:*"))  # MLflow made no folder for the file: URI


def test_an_older_mlflow_schema_is_said_in_one_line_and_left_alone(isolated_home):
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    from mlfactory.tracking import open_tracking

    settings = load_settings()
    open_tracking(settings)  # a complete store, as a writer makes it
    script = ScriptDirectory.from_config(_get_alembic_config(db_url=""))
    older = script.get_revision(script.get_current_head()).down_revision
    with get_engine(settings.database_url).begin() as connection:
        connection.execute(sa.text("update alembic_version set version_num = :v"), {"v": older})
    before = store_fingerprint(settings)

    pages = browse_dashboard(settings)
    assert f"older MLflow schema (revision {older}" in pages["/experiments"][1]
    assert pages["/models"][0] == 200 and "mlflow db upgrade" in pages["/models"][1]
    for command in (["runs", "list"], ["models", "list"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "older MLflow schema" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) <= 3  # one line (and its hint), wrapped
    info = json.loads(runner.invoke(app, ["info", "--json"]).stdout)
    assert f"older MLflow schema (revision {older}" in info["tracking"]
    assert store_fingerprint(settings) == before


def test_readers_never_checkpoint_the_wal_a_killed_writer_left(tmp_path, monkeypatch):
    from mlfactory.tracking import experiment_for, open_tracking, tracked_run

    writer_home = tmp_path / "writer"
    writer = load_settings(home=writer_home)
    client = open_tracking(writer)
    experiment_id = experiment_for(client, "wal", writer)
    for i in range(3):
        with tracked_run(client, experiment_id, f"r{i}"):
            pass
    # the files as a SIGKILL leaves them: committed pages still in the -wal, never checkpointed
    home = tmp_path / "home"
    shutil.copytree(writer_home, home, ignore=shutil.ignore_patterns("*-shm", "*.init.lock"))
    assert (home / "mlfactory.db-wal").stat().st_size > 0
    monkeypatch.setenv("MLFACTORY_HOME", str(home))
    settings = load_settings()
    before = store_fingerprint(settings)
    assert "mlfactory.db-wal" in before["home"]

    for command in _reader_commands(tmp_path, "0" * 32, "none"):
        _one_line_errors(runner.invoke(app, command))
    assert store_fingerprint(settings) == before
    pages = browse_dashboard(settings)
    assert "wal" in pages["/experiments"][1]
    assert store_fingerprint(settings) == before
