"""``runs list/show/compare`` and ``models list/show`` read MLflow's tables with SQL (issue #21).

Each command runs twice on the same store, once through the SQL readers and once through MLflow's
client (``MLFACTORY_SQL_READERS=0``), and must print exactly the same thing: JSON and tables,
errors included. The store holds what changes an answer: nested runs, a deleted run, a deleted
experiment, equal start times (ties broken by run id), a NaN metric, metrics logged at several
steps, a secret in a param, artifacts, a registered model with versions, aliases and tags, a
version deleted, a model without versions and a prompt (hidden by MLflow's searches).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.settings import get_settings, load_settings
from mlfactory.tracking import experiment_for, open_tracking
from mlfactory.tracking._sqlread import (
    SQL_READERS_VARIABLE,
    VersionRow,
    compare_records,
    sql_reader,
)

runner = CliRunner()
T0 = 1_780_000_000_000  # ms


def _populate() -> dict[str, str]:
    """A store with every case the readers must get right; returns the run ids by role."""
    settings = load_settings()
    client = open_tracking(settings)
    credit = experiment_for(client, "credit", settings)
    other = experiment_for(client, "other", settings)
    gone = experiment_for(client, "gone", settings)
    ids: dict[str, str] = {}

    parent = client.create_run(credit, run_name="matrix", start_time=T0).info.run_id
    ids["parent"] = parent
    client.log_param(parent, "spec", "credit.toml")
    client.log_param(parent, "db", "postgresql://user:hunter2@db.example/ml")
    for step, value in enumerate((0.5, 0.7, 0.6)):
        client.log_metric(parent, "test_roc_auc", value, step=step, timestamp=T0 + step)
    client.log_metric(parent, "test_accuracy", 0.81, timestamp=T0)
    client.log_metric(parent, "test_nan", math.nan, timestamp=T0)
    client.log_metric(parent, "train_loss", 0.1, timestamp=T0)
    client.set_tag(parent, "mlfactory.role", "parent")
    client.log_text(parent, "notes", "notes.txt")
    client.log_text(parent, "flavors: {}", "model/MLmodel")
    client.set_terminated(parent, end_time=T0 + 65_432)
    for index in range(3):  # candidates starting with their parent: ties broken by run id
        child = client.create_run(
            credit,
            run_name=f"cell-{index}",
            start_time=T0,
            tags={"mlflow.parentRunId": parent, "mlfactory.role": "candidate"},
        ).info.run_id
        ids[f"child{index}"] = child
        client.log_param(child, "spec", "credit.toml")
        client.log_param(child, "C", str(index))
        client.log_metric(child, "test_roc_auc", 0.6 + index / 10, timestamp=T0)
        if index:
            client.log_metric(child, "test_f1", 0.5, timestamp=T0)
        client.set_terminated(child, end_time=T0 + 1000 * index)
    running = client.create_run(other, run_name="running", start_time=T0 + 5000)
    ids["running"] = running.info.run_id
    client.log_metric(ids["running"], "test_r2", 0.25, timestamp=T0)
    deleted = client.create_run(credit, run_name="deleted", start_time=T0 + 9000).info.run_id
    client.delete_run(deleted)
    ids["deleted"] = deleted
    in_gone = client.create_run(gone, run_name="in-gone", start_time=T0 + 7000).info.run_id
    ids["in_gone"] = in_gone
    client.delete_experiment(gone)

    client.create_registered_model("credit-model", tags={"owner": "risk"})
    for index, run_id in enumerate((ids["child0"], ids["child1"], ids["child2"], parent)):
        client.create_model_version(
            "credit-model",
            source=f"runs:/{run_id}/model",
            run_id=run_id,
            tags={
                "spec": "credit.toml",
                "metric.test_roc_auc": str(0.6 + index / 10),
                "metric.test_accuracy": "0.8",
                "metric.note": "not a number",
                "dataset": f"credit-{index}",
            },
        )
    client.set_registered_model_alias("credit-model", "champion", "2")
    client.set_registered_model_alias("credit-model", "challenger", "4")
    client.set_registered_model_alias("credit-model", "old", "2")
    client.set_model_version_tag("credit-model", "3", "fleet", "false")
    client.delete_model_version("credit-model", "1")
    client.create_registered_model("alpha")
    client.register_prompt("a-prompt", "Say {{ greeting }}")  # a registered model MLflow hides
    return ids


def _commands(ids: dict[str, str]) -> list[list[str]]:
    parent, child = ids["parent"], ids["child1"]
    commands = [
        ["runs", "list"],
        ["runs", "list", "--all"],
        ["runs", "list", "--experiment", "credit", "--all"],
        ["runs", "list", "--experiment", "gone"],
        ["runs", "list", "--experiment", "absent"],
        ["runs", "list", "--all", "--limit", "2"],
        ["runs", "show", parent],
        ["runs", "show", parent[:6]],
        ["runs", "show", ids["deleted"]],
        ["runs", "show", "0" * 32],
        ["runs", "compare", parent, child, ids["child0"]],
        ["runs", "compare", "--diff", child, ids["child2"]],
        ["runs", "compare", ids["running"], ids["child0"]],
        ["models", "list"],
        ["models", "show", "credit-model"],
        ["models", "show", "alpha"],
        ["models", "show", "absent"],
        ["models", "decisions", "credit-model"],
    ]
    return [*commands, *[[*c, "--json"] for c in commands]]


def _invoke(args: list[str], monkeypatch: pytest.MonkeyPatch, sql: bool) -> tuple[Any, ...]:
    monkeypatch.setenv(SQL_READERS_VARIABLE, "1" if sql else "0")
    get_settings.cache_clear()
    done = runner.invoke(app, args)
    error = None if done.exception is None else (type(done.exception), str(done.exception))
    return done.exit_code, done.output, error


def _same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _populate()
    assert sql_reader(load_settings()) is not None  # these stores are read with SQL
    for args in _commands(ids):
        by_sql = _invoke(args, monkeypatch, sql=True)
        by_mlflow = _invoke(args, monkeypatch, sql=False)
        assert by_sql == by_mlflow, f"{' '.join(args)}\n{by_sql}\n{by_mlflow}"
    listed = _invoke(["runs", "list", "--all", "--json"], monkeypatch, sql=True)[1]
    assert ids["parent"] in listed and ids["child0"] in listed and ids["deleted"] not in listed
    assert (
        ids["in_gone"] not in listed
        and "hunter2"
        not in _invoke(["runs", "show", ids["parent"], "--json"], monkeypatch, sql=True)[1]
    )
    models = _invoke(["models", "list", "--json"], monkeypatch, sql=True)[1]
    assert "credit-model" in models and "alpha" in models and "a-prompt" not in models
    _same_comparison(ids)


def test_sqlite_readers_answer_as_mlflow_does(monkeypatch: pytest.MonkeyPatch) -> None:
    _same_answers(monkeypatch)


def test_postgresql_readers_answer_as_mlflow_does(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFACTORY_DB_URL", postgres_url)
    get_settings.cache_clear()
    _same_answers(monkeypatch)


def test_a_store_the_snapshot_does_not_describe_is_read_by_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlfactory.tracking import _readonly

    _populate()
    settings = load_settings()
    assert sql_reader(settings) is not None
    snapshot = json.loads(_readonly.MLFLOW_SCHEMA_SNAPSHOT.read_text())
    other = tmp_path / "other-mlflow.json"
    other.write_text(json.dumps({**snapshot, "mlflow": "0.0.1"}))
    monkeypatch.setattr(_readonly, "MLFLOW_SCHEMA_SNAPSHOT", other)
    assert sql_reader(settings) is None  # taken of another MLflow: its client answers
    shown = _invoke(["models", "show", "credit-model", "--json"], monkeypatch, sql=True)
    assert shown[0] == 0 and '"version": "4"' in shown[1]
    monkeypatch.undo()
    monkeypatch.setenv(SQL_READERS_VARIABLE, "0")
    assert sql_reader(settings) is None


def test_versions_have_the_registry_s_fields() -> None:
    from dataclasses import fields

    from mlfactory.registry import VersionInfo

    assert [f.name for f in fields(VersionRow)] == [f.name for f in fields(VersionInfo)]


def _same_comparison(ids: dict[str, str]) -> None:
    """compare_records flags what the pandas comparison (``_queries.compare_runs``) flags."""
    import pandas as pd

    from mlfactory.tracking._queries import compare_runs, get_run

    client = open_tracking(load_settings(), read_only=True)
    for chosen in (["parent", "child0", "child1"], ["running", "child2"], ["child1", "child2"]):
        run_ids = [ids[c] for c in chosen]
        frame = compare_runs(client, run_ids)
        rows = compare_records({run_id: get_run(client, run_id) for run_id in run_ids})
        assert [(r["kind"], r["key"]) for r in rows] == list(frame.index)
        assert [r["differs"] for r in rows] == [bool(v) for v in frame["differs"]]
        for row, (_, expected) in zip(rows, frame.iterrows(), strict=True):
            got = [None if v is None or v != v else v for v in row["values"]]
            assert got == [None if pd.isna(v) else v for v in expected.drop("differs")]
