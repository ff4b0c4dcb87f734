import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.settings import load_settings

runner = CliRunner()

SPEC = """
name = "{name}"
dataset = "breast_cancer"
preprocessing = "basic"
model = "LogisticRegression"
seed = 3
[cv]
folds = 2
scoring = ["roc_auc", "accuracy"]
[search]
kind = "{kind}"
param_grid = {{clf__C = [0.1, 1.0]}}
"""


def _spec(folder: Path, name: str = "cancer", kind: str = "grid") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name, kind=kind))
    return path


def test_train_then_list_show_compare(tmp_path):
    spec = _spec(tmp_path)
    first = runner.invoke(app, ["train", str(spec)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["train", str(spec), "--set", "seed=4", "--jobs", "2"])
    assert second.exit_code == 0, second.output
    assert "held-out test" in first.output and "roc_auc=" in first.output

    runs = mlflow.search_runs(
        experiment_names=["cancer"], filter_string="tags.`mlfactory.role` = 'parent'"
    )
    assert len(runs) == 2
    assert sorted(runs["params.spec.seed"]) == ["3", "4"]
    run_a, run_b = runs["run_id"]

    listed = runner.invoke(app, ["runs", "list", "--experiment", "cancer"])
    assert listed.exit_code == 0
    assert run_a[:8] in listed.output and run_b[:8] in listed.output

    shown = runner.invoke(app, ["runs", "show", run_a])
    assert shown.exit_code == 0
    assert "test_roc_auc" in shown.output and "cv_results.csv" in shown.output

    compared = runner.invoke(app, ["runs", "compare", run_a, run_b, "--diff"])
    assert compared.exit_code == 0
    assert "spec.seed" in compared.output

    missing = runner.invoke(app, ["runs", "show", "0" * 32])
    assert missing.exit_code == 1
    assert "not found" in missing.output


def test_bad_spec_is_one_line_exit_2(tmp_path):
    spec = _spec(tmp_path)
    result = runner.invoke(app, ["train", str(spec), "--set", "model=Nope"])
    assert result.exit_code == 2
    assert "Nope" in result.output and "LogisticRegression" in result.output
    assert "Traceback" not in result.output


def _launch(spec: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mlfactory", "train", str(spec)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _concurrent_trainings(tmp_path: Path, count: int, db_url: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env["MLFACTORY_HOME"] = str(tmp_path / ".mlfactory")
    if db_url:
        env["MLFACTORY_DB_URL"] = db_url
    specs = [_spec(tmp_path, f"exp{i % 2}", kind="grid") for i in range(count)]
    processes = [_launch(spec, tmp_path, env) for spec in specs]
    outputs = []
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
        outputs.append(output)
    return outputs


@pytest.mark.slow
def test_four_concurrent_trainings_on_sqlite(tmp_path, isolated_home):
    _concurrent_trainings(tmp_path, 4, None)
    settings = load_settings()
    _assert_all_recorded(settings.database_url, 4)


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_concurrent_trainings_on_postgres(tmp_path, postgres_url, postgres_server):
    outputs = _concurrent_trainings(tmp_path, 8, postgres_url)
    _assert_all_recorded(postgres_url, 8)
    # the password never reaches params, tags, logs, artifacts or output
    secret = postgres_server.password
    mlflow.set_tracking_uri(postgres_url)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert not runs.astype(str).apply(lambda col: col.str.contains(secret, regex=False)).any().any()
    for output in outputs:
        assert secret not in output
    for path in (tmp_path / ".mlfactory").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def _assert_all_recorded(url: str, count: int) -> None:
    engine = get_engine(url)
    with engine.connect() as connection:
        parents = connection.execute(
            sa.text(
                "select count(*) from runs r join tags t on t.run_uuid = r.run_uuid "
                "where t.key = 'mlfactory.role' and t.value = 'parent' and r.status = 'FINISHED'"
            )
        ).scalar()
        tuning_runs = (
            connection.execute(sa.text("select distinct run_id from tuning_results"))
            .scalars()
            .all()
        )
        folds = connection.execute(sa.text("select count(*) from cv_fold_results")).scalar()
        stuck = connection.execute(
            sa.text("select count(*) from runs where status = 'RUNNING'")
        ).scalar()
    assert parents == count
    assert len(tuning_runs) == count
    assert folds == count * 2 * 2 * 2  # candidates x folds x metrics
    assert stuck == 0
    assert all(re.fullmatch(r"[0-9a-f]{32}", run_id) for run_id in tuning_runs), tuning_runs


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_same_seed_same_results_sequential_parallel_and_on_a_cluster(tmp_path):
    from dask.distributed import LocalCluster

    spec = _spec(tmp_path, "same-seed")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        for extra in ([], ["--jobs", "2"], ["--scheduler", cluster.scheduler_address]):
            result = runner.invoke(app, ["train", str(spec), *extra])
            assert result.exit_code == 0, result.output
    runs = mlflow.search_runs(
        experiment_names=["same-seed"], filter_string="tags.`mlfactory.role` = 'parent'"
    )
    assert len(runs) == 3
    assert set(runs["tags.mlfactory.scheduler"]) == {"local", cluster.scheduler_address}
    for column in ("params.best.clf__C", "metrics.test_roc_auc", "metrics.cv_roc_auc_mean"):
        assert runs[column].nunique() == 1, runs[column].tolist()
