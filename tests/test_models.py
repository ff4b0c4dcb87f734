"""Model zoo, shipped grids and declarative search spaces."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import ParameterGrid
from threadpoolctl import threadpool_limits

from mlfactory.datasets._base import Task
from mlfactory.exceptions import SpecError
from mlfactory.models import (
    MODELS,
    build_model,
    default_distributions_path,
    default_grid_path,
    find_grid_file,
    grids_dir,
    list_models,
    load_grid,
    load_json_file,
    parse_distributions,
    to_optuna_distributions,
    to_scipy_distributions,
)

ALL_CELLS = [(name, task) for name in list_models() for task in MODELS[name].tasks]


def test_lists_per_task():
    assert "NaiveBayes" in list_models(Task.CLASSIFICATION)
    assert "NaiveBayes" not in list_models(Task.REGRESSION)
    assert {"Lasso", "Ridge"} <= set(list_models("regression"))
    assert not {"Lasso", "Ridge"} & set(list_models("classification"))
    assert "LogisticRegression" not in list_models("regression")
    for name in ("KNN", "RandomForest", "HistGradientBoosting", "SVM", "NeuralNet"):
        assert set(MODELS[name].tasks) == {Task.CLASSIFICATION, Task.REGRESSION}


def test_unknown_name_lists_valid_models_for_the_task():
    with pytest.raises(SpecError, match=r"unknown model 'Forest'.*valid regression models: KNN"):
        build_model("Forest", Task.REGRESSION)


def test_model_without_the_task_says_so():
    with pytest.raises(SpecError, match=r"'NaiveBayes' does not do regression.*Lasso"):
        build_model("NaiveBayes", "regression")


@pytest.mark.parametrize("name", ["LightGBM", "XGBoost"])
def test_optional_boosters_are_import_guarded(name):
    installed = importlib.util.find_spec(MODELS[name].requires) is not None
    assert (name in list_models()) == installed
    if not installed:
        with pytest.raises(SpecError, match=rf"needs the optional package '{name.lower()}'"):
            build_model(name, "classification")
        assert name in list_models(include_unavailable=True)


@pytest.mark.parametrize(("name", "task"), ALL_CELLS)
def test_seed_goes_to_random_state(name, task):
    model = build_model(name, task, seed=123)
    params = model.get_params()
    if "random_state" in params:
        assert params["random_state"] == 123
    else:
        assert name in {"NaiveBayes", "KNN"} or (name == "SVM" and task == Task.REGRESSION)


def test_choices_documented_in_factories():
    assert build_model("SVM", "classification").get_params()["probability"] is True
    assert build_model("LogisticRegression", "classification").get_params()["max_iter"] >= 1000


@pytest.mark.parametrize(("name", "task"), ALL_CELLS)
def test_shipped_grid_and_space_name_real_parameters(name, task):
    params = build_model(name, task).get_params()
    grid = load_grid(default_grid_path(name, task))
    space = load_json_file(default_distributions_path(name, task))
    for key in [*grid, *space]:
        assert key.startswith("clf__")
        assert key.removeprefix("clf__") in params, (name, key)
    assert len(ParameterGrid(grid)) <= 12  # default grids stay small
    to_optuna_distributions(space)


def test_task_specific_grids_are_used_where_they_differ():
    assert default_grid_path("SVM", "regression").name == "svm_regression.json"
    assert default_grid_path("SVM", "classification").name == "svm_classification.json"
    assert default_grid_path("Ridge", "regression").name == "ridge.json"
    assert "clf__epsilon" in load_grid(default_grid_path("SVM", "regression"))


def test_course_grid_is_shipped():
    grid = load_grid("logistic_regression_course.json")
    assert grid == {
        "clf__C": [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0],
        "clf__l1_ratio": [0.0],  # l2 without the deprecated penalty parameter
        "clf__solver": ["lbfgs"],
    }
    assert find_grid_file("grids/logistic_regression_course.json") == (
        grids_dir() / "logistic_regression_course.json"
    )


def test_spec_folder_grid_wins_over_shipped(tmp_path):
    (tmp_path / "logistic_regression.json").write_text('{"clf__C": [3.0]}')
    assert load_grid("logistic_regression.json", base_dir=tmp_path) == {"clf__C": [3.0]}
    assert load_grid("logistic_regression.json") != {"clf__C": [3.0]}


def test_missing_and_malformed_grid_files(tmp_path):
    with pytest.raises(SpecError, match=r"grid file 'nope.json' not found.*knn.json"):
        load_grid("nope.json", base_dir=tmp_path)
    (tmp_path / "bad.json").write_text('{"clf__C": [1,\n}')
    with pytest.raises(SpecError, match=r"bad.json: malformed JSON at line 2"):
        load_grid("bad.json", base_dir=tmp_path)
    with pytest.raises(SpecError, match=r"'clf__C' must be a non-empty list"):
        load_grid({"clf__C": 1.0})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("name", "task"), ALL_CELLS)
def test_every_model_learns_planted_signal(name, task):
    if task == Task.CLASSIFICATION:
        X, y = load_breast_cancer(return_X_y=True)
        floor = 0.85  # accuracy; the majority class alone gets 0.63
    else:
        X, y = load_diabetes(return_X_y=True)
        floor = 0.2  # R^2 on training rows; a constant gets 0
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    with threadpool_limits(1):  # OpenMP spin-up dominates HistGradientBoosting on tiny data
        model = build_model(name, task, seed=0).fit(X, y)
    assert model.score(X, y) > floor


def test_optuna_distributions_from_declarative_space():
    space = {
        "clf__C": {"type": "float", "low": 1e-3, "high": 10, "log": True},
        "clf__max_depth": {"type": "int", "low": 2, "high": 12},
        "clf__kernel": {"type": "categorical", "choices": ["rbf", "linear"]},
    }
    out = to_optuna_distributions(space)
    assert out["clf__C"] == FloatDistribution(1e-3, 10.0, log=True)
    assert out["clf__max_depth"] == IntDistribution(2, 12)
    assert out["clf__kernel"] == CategoricalDistribution(["rbf", "linear"])


def test_scipy_distributions_for_random_search():
    out = to_scipy_distributions(
        {
            "a": {"type": "float", "low": 0.01, "high": 1.0, "log": True},
            "b": {"type": "float", "low": 2.0, "high": 3.0},
            "c": {"type": "int", "low": 1, "high": 4},
            "d": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25},
            "e": {"type": "int", "low": 1, "high": 1000, "log": True},
        }
    )
    rng = np.random.default_rng(0)
    a = out["a"].rvs(size=500, random_state=rng)
    assert a.min() >= 0.01 and a.max() <= 1.0
    assert abs(np.log10(np.median(a)) - (-1.0)) < 0.15  # log-uniform: median at 10^-1
    b = out["b"].rvs(size=500, random_state=rng)
    assert b.min() >= 2.0 and b.max() <= 3.0
    assert out["c"] == [1, 2, 3, 4]
    assert out["d"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert out["e"][0] == 1 and out["e"][-1] == 1000 and out["e"] == sorted(set(out["e"]))


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ({"type": "float", "low": 0, "high": 1, "log": True}, "log scale needs low > 0"),
        ({"type": "float", "low": 2, "high": 1}, r"low \(2.0\) must be <= high"),
        ({"type": "int", "low": 1, "high": 5, "lo": 3}, "unknown key 'lo'; valid keys for int"),
        ({"type": "normal", "low": 1}, "'type' must be one of: float, int, categorical"),
        ({"type": "categorical", "choices": []}, "choices must be a non-empty list"),
        ({"type": "float", "low": 1, "high": 5, "log": True, "step": 1}, "cannot be combined"),
    ],
)
def test_invalid_spaces_name_the_parameter(param, message):
    with pytest.raises(SpecError, match=rf"parameter 'clf__x': .*{message}"):
        parse_distributions({"clf__x": param})


def test_shipped_json_files_are_all_valid_json():
    files = list(grids_dir().rglob("*.json"))
    assert len(files) >= 20
    for path in files:
        assert isinstance(json.loads(path.read_text()), dict)
