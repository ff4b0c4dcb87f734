"""What people and scripts read: short run ids, unique prefixes, 100-column tables, ``--json``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.registry import promote
from mlfactory.settings import Settings, load_settings
from mlfactory.training import train

runner = CliRunner()

SPEC = """
name = "a-rather-long-experiment-name-for-narrow-terminals"
dataset = "breast_cancer"
preprocessing = "basic"
model = "LogisticRegression"
seed = {seed}
[cv]
folds = 2
scoring = ["roc_auc", "accuracy", "f1", "precision"]
[search]
kind = "none"
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[str]]:
    """Two trained runs and a registered model with both as versions, in a home of their own."""
    folder = tmp_path_factory.mktemp("views")
    settings = load_settings(home=folder / ".mlfactory")
    run_ids = []
    for seed in (1, 2):
        spec = folder / f"spec{seed}.toml"
        spec.write_text(SPEC.format(seed=seed))
        run_ids.append(train(spec, settings).run_id)
        promote(settings, "cancer-model-with-a-long-name", run_id=run_ids[-1])
    return settings, run_ids


@pytest.fixture
def home(store, monkeypatch) -> tuple[Settings, list[str]]:
    monkeypatch.setenv("MLFACTORY_HOME", str(store[0].home))
    return store


def _cli(home_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real program in a 100-column terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env.update(MLFACTORY_HOME=str(home_dir), COLUMNS="100", LINES="50")
    return subprocess.run(
        [sys.executable, "-m", "mlfactory", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_lists_and_shows_fit_100_columns_with_short_ids(home) -> None:
    settings, run_ids = home
    listed = _cli(settings.home, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, listed.stdout
    for run_id in run_ids:
        assert run_id not in listed.stdout  # shown short
        row = [line for line in lines if run_id[:8] in line]
        # one line per run, cells intact: not folded character by character
        assert len(row) == 1 and "FINISHED" in row[0] and "a-rather" in row[0], listed.stdout
        assert re.search(r"0\.\d{4}", row[0]), row
    shown = _cli(settings.home, "runs", "show", run_ids[0][:8])
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_ids[0]}" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines() if "│" in line) <= 100
    metric_rows = [line for line in shown.stdout.splitlines() if "test_roc_auc" in line]
    assert len(metric_rows) == 1 and re.search(r"0\.\d{4}", metric_rows[0]), shown.stdout
    model = _cli(settings.home, "models", "show", "cancer-model-with-a-long-name")
    assert model.returncode == 0, model.stderr
    model_lines = model.stdout.splitlines()
    assert max(len(line) for line in model_lines) <= 100, model.stdout
    for version, run_id in zip(("2", "1"), reversed(run_ids), strict=True):
        row = [line for line in model_lines if run_id[:8] in line]
        assert len(row) == 1 and version in row[0], model.stdout
    assert "champion" in model.stdout


def test_every_command_taking_a_run_id_accepts_a_unique_prefix(home) -> None:
    _, run_ids = home
    first, second = run_ids
    for prefix in (first[:8], first[:5], first[:4].upper()):
        shown = runner.invoke(app, ["runs", "show", prefix, "--json"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["run_id"] == first
    compared = runner.invoke(app, ["runs", "compare", first[:6], second[:6], "--json"])
    assert compared.exit_code == 0, compared.output
    rows = json.loads(compared.stdout)
    assert {"kind", "key", "differs", first, second} <= set(rows[0])
    promoted = runner.invoke(app, ["promote", second[:7], "--name", "by-prefix"])
    assert promoted.exit_code == 0, promoted.output
    assert f"from run {second[:8]}" in promoted.output
    missing = runner.invoke(app, ["runs", "show", "ffff0000"])
    assert missing.exit_code == 1 and "no run id starts with 'ffff0000'" in missing.stderr
    short = runner.invoke(app, ["runs", "show", "abc"])
    assert short.exit_code == 2 and "4 to 32 hexadecimal" in short.stderr


def test_an_ambiguous_prefix_is_one_line_listing_the_candidates(tmp_path, monkeypatch) -> None:
    """Two runs whose ids share a prefix (rare by chance: made here by renaming two ids)."""
    from mlfactory.tracking import open_tracking

    settings = load_settings(home=tmp_path / "amb")
    client = open_tracking(settings)
    experiment = client.create_experiment("twins")
    ids = [client.create_run(experiment, run_name=f"twin-{i}").info.run_id for i in (1, 2)]
    engine = sa.create_engine(settings.database_url)
    with engine.begin() as connection:
        for index, run_id in enumerate(ids):
            for table in ("tags", "runs"):
                column = "run_uuid"
                connection.exec_driver_sql(
                    f"UPDATE {table} SET {column} = ? WHERE {column} = ?",
                    (f"abcd{index}" + run_id[5:], run_id),
                )
    engine.dispose()
    monkeypatch.setenv("MLFACTORY_HOME", str(settings.home))
    result = runner.invoke(app, ["runs", "show", "abcd"])
    assert result.exit_code == 2, result.output
    error, hint = [line for line in result.stderr.splitlines() if line.strip()]
    assert "ambiguous: 2 runs start with it" in error
    assert "twins/twin-1" in error and "twins/twin-2" in error
    assert hint.startswith("hint: give more characters")
    assert runner.invoke(app, ["runs", "show", "abcd1"]).exit_code == 0


def test_every_list_and_show_command_has_json(home) -> None:
    _, run_ids = home
    listed = json.loads(runner.invoke(app, ["runs", "list", "--json"]).stdout)
    assert {row["run_id"] for row in listed} == set(run_ids)
    assert all("test_roc_auc" in row for row in listed)
    shown = json.loads(runner.invoke(app, ["runs", "show", run_ids[1], "--json"]).stdout)
    assert shown["metrics"]["test_roc_auc"] > 0.5 and "cv_results.csv" in shown["artifacts"]
    models = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {m["name"] for m in models} >= {"cancer-model-with-a-long-name"}
    versions = json.loads(
        runner.invoke(app, ["models", "show", "cancer-model-with-a-long-name", "--json"]).stdout
    )
    assert [v["version"] for v in versions] == ["2", "1"]
    assert versions[0]["run_id"] == run_ids[1] and versions[0]["aliases"] == ["champion"]
    assert set(versions[0]["metrics"]) >= {"test_roc_auc", "test_accuracy", "test_f1"}


def test_json_of_an_empty_store_is_an_empty_list(isolated_home) -> None:
    assert json.loads(runner.invoke(app, ["runs", "list", "--json"]).stdout) == []
    assert json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout) == []


def test_info_data_status_and_the_spec_lists_have_json(isolated_home) -> None:
    info = runner.invoke(app, ["info", "--json"])
    assert info.exit_code == 0, info.output
    parsed = json.loads(info.stdout)
    assert parsed["database"]["reachable"] is True
    assert parsed["settings"]["home"] == str(isolated_home.resolve())
    status = json.loads(runner.invoke(app, ["data", "status", "--json"]).stdout)
    assert status["tickers"] == [] and status["rows"] == 0
    models = json.loads(runner.invoke(app, ["spec", "models", "--json"]).stdout)
    assert {"model": "LogisticRegression", "tasks": ["classification"]}.items() <= next(
        m for m in models if m["model"] == "LogisticRegression"
    ).items()
    regression = runner.invoke(app, ["spec", "models", "--task", "regression", "--json"])
    assert all("regression" in m["tasks"] for m in json.loads(regression.stdout))
    recipes = json.loads(runner.invoke(app, ["spec", "recipes", "--json"]).stdout)
    assert "basic" in recipes and isinstance(recipes["basic"], str)
