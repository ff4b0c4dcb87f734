"""Pipelines, CV splitters and search inputs a resolved spec hands to the runner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from mlfactory.datasets import WalkForwardSplit
from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.exceptions import SpecError
from mlfactory.spec import spec_from_dict


def small_dataset(n: int = 120, seed: int = 0) -> Dataset:
    """Planted signal: y = 1 when x1 + noise > 0; a skewed column and a categorical."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "x1": x1,
            "skewy": rng.lognormal(0, 1.5, size=n),
            "color": rng.choice(["red", "blue"], size=n),
            "unused": np.arange(n),
        }
    )
    X.loc[::10, "x1"] = np.nan
    y = pd.Series((np.nan_to_num(x1) + 0.3 * rng.normal(size=n) > 0).astype(int))
    roles = ColumnRoles(numeric=("x1", "skewy"), categorical=("color",))
    return Dataset("small", X, y, Task.CLASSIFICATION, roles)


def spec(**fields):
    base = {"name": "p", "dataset": {"path": "small.csv", "target": "y"}, "model": "KNN"}
    return spec_from_dict({**base, **fields})


def test_build_pipeline_has_two_named_steps_and_learns():
    ds = small_dataset()
    pipe = spec(model="LogisticRegression", preprocessing="power").build_pipeline(ds)
    assert isinstance(pipe, Pipeline)
    assert [name for name, _ in pipe.steps] == ["preproc", "clf"]
    assert pipe.named_steps["clf"].random_state == 42
    pipe.fit(ds.X, ds.y)
    assert pipe.score(ds.X, ds.y) > 0.8
    names = list(pipe[:-1].get_feature_names_out())
    assert names == ["x1", "skewy", "color_blue", "color_red"]


def test_power_detects_skew_on_the_training_rows():
    ds = small_dataset()
    pipe = spec(preprocessing="power").build_pipeline(ds)
    groups = {name: cols for name, _, cols in pipe.named_steps["preproc"].transformers}
    assert groups["skewed"] == ["skewy"] and groups["num"] == ["x1"]


def test_matrix_needs_a_cell():
    ds = small_dataset()
    matrix = spec(model=["KNN", "RandomForest"])
    with pytest.raises(SpecError, match=r"matrix of 2 cells"):
        matrix.build_pipeline(ds)
    pipe = matrix.build_pipeline(ds, ("basic", "RandomForest"))
    assert type(pipe.named_steps["clf"]).__name__ == "RandomForestClassifier"


def test_resolve_with_a_given_dataset_builds_every_cell():
    ds = small_dataset()
    resolved = spec(
        model=["KNN", "LogisticRegression"], preprocessing=["basic", "robust_knn"]
    ).resolve(dataset=ds)
    assert [c.label for c in resolved.cells] == [
        "basic+KNN",
        "basic+LogisticRegression",
        "robust_knn+KNN",
        "robust_knn+LogisticRegression",
    ]
    assert len(resolved.train_idx) == 96 and len(resolved.test_idx) == 24
    assert set(resolved.train_idx).isdisjoint(resolved.test_idx)
    assert resolved.split.n_train == 96
    assert isinstance(resolved.cv, StratifiedKFold)
    assert resolved.cv.random_state == 42 and resolved.cv.shuffle
    assert resolved.y_train.mean() == pytest.approx(ds.y.mean(), abs=0.03)  # stratified


def test_grid_search_runs_on_resolved_cells():
    ds = small_dataset()
    resolved = spec(
        model="LogisticRegression",
        cv={"folds": 3, "scoring": ["roc_auc", "accuracy"]},
        search={"kind": "grid", "param_grid": "logistic_regression_course.json"},
    ).resolve(dataset=ds)
    cell = resolved.cells[0]
    assert len(cell.param_grid["clf__C"]) == 10
    search = GridSearchCV(
        cell.pipeline,
        cell.param_grid,
        scoring=resolved.scoring,
        refit=resolved.refit,
        cv=resolved.cv,
    ).fit(resolved.X_train, resolved.y_train)
    assert search.best_score_ > 0.85
    assert resolved.refit == "roc_auc"


def test_optuna_and_random_inputs():
    ds = small_dataset()
    resolved = spec(
        model="LogisticRegression",
        search={
            "kind": "optuna",
            "distributions": {"clf__C": {"type": "float", "low": 0.1, "high": 10, "log": True}},
        },
    ).resolve(dataset=ds)
    assert resolved.cells[0].optuna_distributions() == {
        "clf__C": FloatDistribution(0.1, 10.0, log=True)
    }
    random = spec(model="KNN", search={"kind": "random"}).resolve(dataset=ds)
    dists = random.cells[0].random_distributions()
    assert dists["clf__weights"] == ["uniform", "distance"]
    assert random.cells[0].param_grid is None
    grid_random = spec(
        model="KNN", search={"kind": "random", "param_grid": {"clf__n_neighbors": [3, 5]}}
    ).resolve(dataset=ds)
    assert grid_random.cells[0].random_distributions() == {"clf__n_neighbors": [3, 5]}
    none = spec(search={"kind": "none"}).resolve(dataset=ds)
    assert none.cells[0].param_grid is None and none.cells[0].space is None


def test_regression_gets_shuffled_kfold_and_its_metrics():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=80)})
    ds = Dataset(
        "r", X, 3 * X["a"] + 0.1 * rng.normal(size=80), Task.REGRESSION, ColumnRoles(numeric=("a",))
    )
    resolved = spec(model="Ridge").resolve(dataset=ds)
    assert isinstance(resolved.cv, KFold) and resolved.cv.shuffle
    assert resolved.refit == "neg_root_mean_squared_error"
    scores = cross_val_score(
        resolved.cells[0].pipeline, resolved.X_train, resolved.y_train, cv=resolved.cv, scoring="r2"
    )
    assert scores.mean() > 0.95


def test_time_ordered_data_walks_forward_with_the_horizon_as_purge():
    n = 100
    dates = pd.date_range("2024-01-01", periods=n)
    X = pd.DataFrame({"date": dates, "x": np.sin(np.arange(n))})
    ds = Dataset(
        "t",
        X,
        pd.Series(np.arange(n) % 2),
        Task.CLASSIFICATION,
        ColumnRoles(numeric=("x",)),
        time_column="date",
        horizon=3,
    )
    resolved = spec(model="LogisticRegression", cv={"folds": 3, "embargo": 1}).resolve(dataset=ds)
    assert isinstance(resolved.cv, WalkForwardSplit)
    assert (resolved.cv.purge, resolved.cv.embargo, resolved.cv.n_splits) == (3, 1, 3)
    assert resolved.split.method == "time"
    assert resolved.train_idx.max() < resolved.test_idx.min()  # test rows are the latest
    for train, test in resolved.cv.split(resolved.X_train):
        train_dates = resolved.X_train["date"].iloc[train]
        test_dates = resolved.X_train["date"].iloc[test]
        assert (test_dates.min() - train_dates.max()).days > 3  # purge gap of 3 dates
    override = spec(model="LogisticRegression", cv={"folds": 3, "purge": 5}).resolve(dataset=ds)
    assert override.cv.purge == 5
