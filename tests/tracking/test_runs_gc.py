"""``mlfactory runs gc``: result rows of deleted or gone runs do not linger (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import CV_FOLD_RESULTS, TUNING_RESULTS, get_engine
from mlfactory.settings import load_settings
from mlfactory.tracking import append_rows, open_tracking, tracking_uri

runner = CliRunner()


def _gc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["runs", "gc", *args])
    return result.exit_code, " ".join(result.output.split())  # unwrapped


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, isolated_home, monkeypatch) -> str:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("MLFACTORY_DB_URL", url)
        return url
    return load_settings().database_url


def _rows(run_id: str) -> tuple[list[dict], list[dict]]:
    tuning = [
        {"run_id": run_id, "experiment": "e", "cell": "c", "candidate": i, "metric": "roc_auc",
         "mean_test_score": 0.5, "status": "ok", "params": "{}"}
        for i in range(2)
    ]  # fmt: skip
    folds = [
        {"run_id": run_id, "experiment": "e", "cell": "c", "candidate": 0, "fold": f,
         "metric": "roc_auc", "train_score": 0.6, "test_score": 0.5, "params": "{}"}
        for f in range(3)
    ]  # fmt: skip
    return tuning, folds


def _counts(url: str) -> dict[str, int]:
    engine = get_engine(url)
    out = {}
    with engine.connect() as connection:
        for table in (TUNING_RESULTS, CV_FOLD_RESULTS):
            rows = connection.execute(
                sa.select(table.c.run_id, sa.func.count()).group_by(table.c.run_id)
            )
            for run_id, count in rows:
                out[f"{table.name}:{run_id}"] = count
    return out


def _world(url: str) -> dict[str, str]:
    """Runs in every state MLflow knows, each with result rows; their ids by state."""
    settings = load_settings(db_url=url) if not url.startswith("sqlite") else load_settings()
    client = open_tracking(settings)
    live_exp = client.create_experiment("kept")
    dead_exp = client.create_experiment("dropped")
    ids = {
        "active": client.create_run(live_exp).info.run_id,
        "deleted": client.create_run(live_exp).info.run_id,
        "purged": client.create_run(live_exp).info.run_id,
        "in_deleted_experiment": client.create_run(dead_exp).info.run_id,
        "never_existed": "0" * 32,
    }
    for run_id in ids.values():
        tuning, folds = _rows(run_id)
        append_rows(get_engine(url), TUNING_RESULTS, tuning)
        append_rows(get_engine(url), CV_FOLD_RESULTS, folds)
    client.delete_run(ids["deleted"])
    client.delete_run(ids["purged"])
    client.delete_experiment(dead_exp)
    # MLflow's own garbage collector removes the purged run for good
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(settings)}
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    done = subprocess.run(
        [str(mlflow_cli), "gc", "--backend-store-uri", tracking_uri(settings),
         "--run-ids", ids["purged"]],
        env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert client.search_runs([live_exp], filter_string=f"attributes.run_id = '{ids['purged']}'",
                              run_view_type=3) == []  # fmt: skip
    return ids


def test_gc_removes_rows_of_deleted_and_gone_runs_only(db_url):
    ids = _world(db_url)
    before = _counts(db_url)
    assert len(before) == 10  # 5 runs x 2 tables

    code, dry = _gc("--dry-run")
    assert code == 0, dry
    assert "checked 5 run(s)" in dry and "4 deleted or gone" in dry
    assert "would remove 8 tuning_results row(s) and 12 cv_fold_results row(s)" in dry
    assert _counts(db_url) == before  # nothing removed

    code, done = _gc()
    assert code == 0, done
    assert "removed 8 tuning_results row(s) and 12 cv_fold_results row(s)" in done
    after = _counts(db_url)
    assert after == {
        f"tuning_results:{ids['active']}": 2,
        f"cv_fold_results:{ids['active']}": 3,
    }
    assert "checked 1 run(s) with result rows: 0 deleted" in _gc()[1]


def test_gc_is_one_transaction(db_url):
    """A failure deleting from the second table leaves the first untouched (rolled back)."""
    ids = _world(db_url)
    engine = get_engine(db_url)
    with engine.begin() as connection:
        if db_url.startswith("sqlite"):
            connection.exec_driver_sql(
                "CREATE TRIGGER no_fold_delete BEFORE DELETE ON cv_fold_results "
                "BEGIN SELECT RAISE(ABORT, 'fold rows are locked'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'fold rows are locked'; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER no_fold_delete BEFORE DELETE ON cv_fold_results "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    before = _counts(db_url)
    code, output = _gc()
    assert code != 0, output
    assert _counts(db_url) == before  # tuning_results rows of the gone runs are still there
    assert f"tuning_results:{ids['deleted']}" in before
