"""What a stock MLflow user sees: MLflow's standard tags and the data as dataset inputs."""

from __future__ import annotations

import getpass
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.settings import load_settings
from mlfactory.tracking import dataset_fingerprint, open_tracking, tracking_uri
from mlfactory.training import SearchConfig
from mlfactory.training._lineage import dataset_inputs, log_dataset_inputs
from mlfactory.training._runner import CellPlan, ExperimentPlan, run_experiment

SCORING = ("roc_auc",)


def _git_repo(folder: Path) -> str:
    """A git repository with one commit holding the spec file; its commit id."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=folder, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    (folder / "cancer.toml").write_text('name = "cancer"\n')
    git("add", "cancer.toml")
    git("commit", "-q", "-m", "spec")
    return git("rev-parse", "HEAD")


def _plan(folder: Path, cells: int) -> ExperimentPlan:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X, y = X.iloc[:240, :6], y.iloc[:240].rename("malignant")
    csv = folder / "cancer.csv"
    X.assign(malignant=y).to_csv(csv, index=False)
    dataset = Dataset(
        "cancer", X, y, Task.CLASSIFICATION, ColumnRoles(tuple(X.columns)), source=str(csv)
    )
    train, test = train_test_split(np.arange(len(X)), test_size=0.25, stratify=y, random_state=0)
    search = SearchConfig("grid", SCORING, "roc_auc", {"clf__C": [0.1, 1.0]})
    pipeline = Pipeline([("pre", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    return ExperimentPlan(
        name="cancer",
        seed=0,
        dataset=dataset,
        train_index=train,
        test_index=test,
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        cells=[CellPlan(f"std/logreg{i}", pipeline, search) for i in range(cells)],
        resolved={"name": "cancer"},
        split_record={"sha256": "abc"},
        spec_path=folder / "cancer.toml",
    )


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, isolated_home):
    if request.param == "postgres":
        return load_settings(db_url=request.getfixturevalue("postgres_url"))
    return load_settings()


@pytest.mark.parametrize("cells", [1, 2])
def test_runs_carry_mlflows_standard_tags_and_dataset_inputs(settings, tmp_path, cells):
    commit = _git_repo(tmp_path)
    plan = _plan(tmp_path, cells)
    result = run_experiment(plan, settings)
    client = MlflowClient(tracking_uri(settings))
    parent = client.get_run(result.run_id)
    runs = client.search_runs([parent.info.experiment_id], max_results=100)
    assert len(runs) == 1 + (cells if cells > 1 else 0) + 2 * cells  # parent, cells, candidates
    for run in runs:
        tags = run.data.tags
        assert tags["mlflow.user"] == getpass.getuser()
        assert tags["mlflow.source.name"] == str((tmp_path / "cancer.toml").resolve())
        assert tags["mlflow.source.type"] == "LOCAL"
        assert tags["mlflow.source.git.commit"] == commit
        assert tags["mlflow.runName"] == run.info.run_name
    assert parent.data.tags["mlflow.runName"] == "cancer"

    X, y = plan.dataset.X, plan.dataset.y
    expected = {
        "training": (X.iloc[plan.train_index], y.iloc[plan.train_index]),
        "testing": (X.iloc[plan.test_index], y.iloc[plan.test_index]),
    }
    model_runs = (
        [parent] if cells == 1 else [parent, *[client.get_run(c.run_id) for c in result.cells]]
    )
    for run in model_runs:
        inputs = run.inputs.dataset_inputs
        by_context = {
            next(t.value for t in item.tags if t.key == "mlflow.data.context"): item.dataset
            for item in inputs
        }
        assert sorted(by_context) == ["testing", "training"] and len(inputs) == 2
        for context, (rows, target) in expected.items():
            dataset = by_context[context]
            sha = dataset_fingerprint(rows, target)["dataset_sha256"]
            assert dataset.digest == sha[:32]
            assert dataset.name == f"cancer-{'train' if context == 'training' else 'test'}"
            assert json.loads(dataset.profile)["num_rows"] == len(rows)
            assert dataset.source_type == "local"
            assert json.loads(dataset.source)["uri"] == (tmp_path / "cancer.csv").resolve().as_uri()
            columns = json.loads(dataset.schema)["mlflow_colspec"]
            assert [c["name"] for c in columns] == [*rows.columns, "malignant"]


def test_no_git_no_commit_tag_and_a_run_without_a_spec(isolated_home, tmp_path):
    plan = _plan(tmp_path, 1)  # tmp_path is no git repository
    plan.spec_path = None
    result = run_experiment(plan, load_settings())
    tags = MlflowClient(tracking_uri(load_settings())).get_run(result.run_id).data.tags
    assert "mlflow.source.git.commit" not in tags
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]


def test_150k_rows_log_metadata_only_and_fast(isolated_home):
    """The rows are never stored; the schema needs no value-by-value scan of 150,000 rows."""
    rng = np.random.default_rng(0)
    rows = 150_000
    X = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(10)})
    X["flag"] = rng.random(rows) < 0.5
    X["city"] = rng.choice(["a", "b", "c"], rows)
    X.loc[rows - 10, "x3"] = np.nan  # far beyond any sample: x3 is still not required
    y = pd.Series(rng.integers(0, 2, rows), name="target")
    settings = load_settings()
    client = open_tracking(settings)
    experiment = client.create_experiment("big")
    import mlflow

    with mlflow.start_run(experiment_id=experiment) as run:
        start = time.perf_counter()
        inputs = dataset_inputs("big", "", X.iloc[:120_000], y.iloc[:120_000], X, y)
        log_dataset_inputs(inputs)
        elapsed = time.perf_counter() - start
    assert elapsed < 10, elapsed  # MLflow's own schema inference alone takes ~10 s here
    logged = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(logged) == 2
    for item in logged:
        stored = len(item.dataset.schema) + len(item.dataset.profile) + len(item.dataset.source)
        assert stored < 4_000  # metadata only
        spec = {c["name"]: c for c in json.loads(item.dataset.schema)["mlflow_colspec"]}
        assert spec["x3"]["required"] is (item.dataset.name == "big-train")
        assert spec["x0"]["required"] is True
