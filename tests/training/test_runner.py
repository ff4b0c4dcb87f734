import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.db import get_engine
from mlfactory.serialization import file_sha256, load_skops
from mlfactory.settings import load_settings
from mlfactory.training import SearchConfig
from mlfactory.training._runner import CellPlan, ExperimentPlan, run_experiment

SCORING = ("roc_auc", "neg_log_loss", "accuracy")


def _plan(cells: list[CellPlan], name: str = "cancer") -> ExperimentPlan:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X, y = X.iloc[:300, :8], y.iloc[:300]
    dataset = Dataset("breast_cancer", X, y, Task.CLASSIFICATION, ColumnRoles(tuple(X.columns)))
    train, test = train_test_split(np.arange(len(X)), test_size=0.25, stratify=y, random_state=0)
    return ExperimentPlan(
        name=name,
        seed=0,
        dataset=dataset,
        train_index=train,
        test_index=test,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        cells=cells,
        resolved={"name": name, "cv": {"folds": 3}, "search": {"kind": "grid"}},
        split_record={"sha256": "abc", "train_size": len(train), "test_size": len(test)},
    )


def _logreg() -> Pipeline:
    return Pipeline([("preproc", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, isolated_home):
    if request.param == "postgres":
        return load_settings(db_url=request.getfixturevalue("postgres_url"))
    return load_settings()


def _git_repository(folder: Path) -> str:
    """Make ``folder`` a git working tree with one commit; return the commit's hash."""

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(
            command, cwd=folder, capture_output=True, text=True, check=True
        ).stdout

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "code under test")
    return git("rev-parse", "HEAD").strip()


def test_single_cell_run_is_recorded_completely(settings):
    commit = _git_repository(Path.cwd())  # the run records the commit of the working directory
    search = SearchConfig("grid", SCORING, "neg_log_loss", {"clf__C": [0.01, 0.1, 1.0]})
    result = run_experiment(_plan([CellPlan("std/logreg", _logreg(), search)]), settings)

    runs = mlflow.search_runs(experiment_names=["cancer"], output_format="list")
    parent = next(r for r in runs if r.info.run_id == result.run_id)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.run_id]
    assert parent.info.status == "FINISHED"
    assert len(children) == 3
    assert {c.data.params["clf__C"] for c in children} == {"0.01", "0.1", "1.0"}
    assert parent.data.params["cv.folds"] == "3"
    assert parent.data.tags["mlfactory.dataset_shape"] == "300x8"
    assert parent.data.tags["mlfactory.git_commit"] == commit
    assert parent.data.tags["mlfactory.git_dirty"] == "false"
    assert parent.data.metrics["test_roc_auc"] == pytest.approx(result.best.test_scores["roc_auc"])
    assert 0.9 < parent.data.metrics["test_roc_auc"] <= 1.0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"cv_results.csv", "cv_folds.csv", "evaluation.png", "spec"} <= artifacts

    engine = get_engine(settings.database_url)
    with engine.connect() as connection:
        folds = connection.execute(
            sa.text("select count(*) from cv_fold_results where run_id = :r"), {"r": result.run_id}
        ).scalar()
        tuning = pd.read_sql(
            sa.text("select * from tuning_results where run_id = :r and metric = 'neg_log_loss'"),
            connection,
            params={"r": result.run_id},
        )
    assert folds == 3 * 3 * len(SCORING)
    assert sorted(tuning["rank"]) == [1, 2, 3]

    # the logged model is a skops file whose hash was recorded, and it predicts like the best
    model_dir = mlflow.artifacts.download_artifacts(parent.data.tags["mlfactory.model_uri"])
    model_file = f"{model_dir}/model.skops"
    assert file_sha256(model_file) == parent.data.tags["mlfactory.model_sha256"]
    loaded = load_skops(model_file, parent.data.tags["mlfactory.model_sha256"])
    X = load_breast_cancer(as_frame=True).data.iloc[:20, :8]
    np.testing.assert_allclose(
        loaded.predict_proba(X), result.best.outcome.best_estimator.predict_proba(X)
    )


def test_matrix_records_a_cell_run_each_and_failed_candidates(isolated_home):
    settings = load_settings()
    tree = Pipeline(
        [("preproc", StandardScaler()), ("clf", DecisionTreeClassifier(random_state=0))]
    )
    cells = [
        CellPlan(
            "std/logreg",
            _logreg(),
            SearchConfig("grid", SCORING, "roc_auc", {"clf__C": [0.1, -1.0]}),
        ),
        CellPlan(
            "std/tree", tree, SearchConfig("grid", SCORING, "roc_auc", {"clf__max_depth": [2, 4]})
        ),
    ]
    result = run_experiment(_plan(cells, "matrix"), settings)

    client = mlflow.MlflowClient()
    parent = client.get_run(result.run_id)
    assert parent.data.tags["mlfactory.best_cell"] == result.best.name
    assert len(result.leaderboard()) == 2
    runs = mlflow.search_runs(experiment_names=["matrix"], output_format="list")
    cells_runs = [r for r in runs if r.data.tags.get("mlfactory.role") == "cell"]
    assert sorted(r.data.tags["mlfactory.cell"] for r in cells_runs) == ["std/logreg", "std/tree"]
    failed = [r for r in runs if r.data.tags.get("mlfactory.status") == "failed"]
    assert len(failed) == 1 and failed[0].info.status == "FAILED"
    assert "must be a float in the range" in failed[0].data.tags["mlfactory.error"]
    assert all(r.info.status in ("FINISHED", "FAILED") for r in runs)
