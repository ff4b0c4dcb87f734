"""The model zoo: name -> estimator factory per task, with shipped default grids.

``Ridge`` and ``Lasso`` are regression models only: their classification cousins either lack
``predict_proba`` (``RidgeClassifier``, so ``neg_log_loss`` could not score it) or duplicate
``LogisticRegression`` (an L2/L1-penalised linear classifier); use ``LogisticRegression`` for those.
``NaiveBayes`` and ``LogisticRegression`` are classification models only. ``LightGBM`` and
``XGBoost`` are offered when their packages are installed.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from mlfactory.datasets._task import Task
from mlfactory.exceptions import SpecError

if TYPE_CHECKING:  # scikit-learn loads when a model is built, not when the zoo is listed
    from sklearn.base import BaseEstimator

__all__ = ["MODELS", "ModelEntry", "build_model", "get_model_entry", "list_models", "snake_name"]

Factory = Callable[[int], "BaseEstimator"]


def _sklearn(path: str, *, seeded: bool = True, **params: Any) -> Factory:
    """A factory of ``sklearn.<path>`` (``"linear_model.Ridge"``) with ``params`` (and
    ``random_state=seed`` when ``seeded``), importing scikit-learn only when it builds."""
    module, _, name = path.rpartition(".")

    def build(seed: int) -> BaseEstimator:
        estimator = getattr(import_module(f"sklearn.{module}"), name)
        return estimator(**params, **({"random_state": seed} if seeded else {}))

    build.__qualname__ = build.__name__ = f"build_{name}"
    return build


def snake_name(name: str) -> str:
    """``LogisticRegression`` -> ``logistic_regression`` (the grid file stem)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@dataclass(frozen=True)
class ModelEntry:
    """One zoo model: a factory per task it supports and the package it needs, if optional."""

    name: str
    factories: dict[Task, Factory]
    description: str = ""
    requires: str | None = None  # optional import name (lightgbm, xgboost)
    stem: str | None = None  # grid file stem when it is not snake_name(name)
    tasks: tuple[Task, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.factories))

    @property
    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    @property
    def snake(self) -> str:
        """Stem of the model's shipped grid files (``logistic_regression``)."""
        return self.stem or snake_name(self.name)


def _lightgbm_classifier(seed: int) -> BaseEstimator:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(random_state=seed, verbose=-1)


def _lightgbm_regressor(seed: int) -> BaseEstimator:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(random_state=seed, verbose=-1)


def _xgboost_classifier(seed: int) -> BaseEstimator:
    from xgboost import XGBClassifier

    return XGBClassifier(random_state=seed, n_jobs=1)


def _xgboost_regressor(seed: int) -> BaseEstimator:
    from xgboost import XGBRegressor

    return XGBRegressor(random_state=seed, n_jobs=1)


C, R = Task.CLASSIFICATION, Task.REGRESSION

_ENTRIES = [
    ModelEntry(
        "NaiveBayes", {C: _sklearn("naive_bayes.GaussianNB", seeded=False)}, "Gaussian naive Bayes"
    ),
    ModelEntry(
        "LogisticRegression",
        {C: _sklearn("linear_model.LogisticRegression", max_iter=5000)},
        "L2-penalised logistic regression (lbfgs, max_iter=5000)",
    ),
    ModelEntry(
        "KNN",
        {
            C: _sklearn("neighbors.KNeighborsClassifier", seeded=False),
            R: _sklearn("neighbors.KNeighborsRegressor", seeded=False),
        },
        "k nearest neighbours",
    ),
    ModelEntry(
        "RandomForest",
        {
            C: _sklearn("ensemble.RandomForestClassifier"),
            R: _sklearn("ensemble.RandomForestRegressor"),
        },
        "random forest (100 trees)",
    ),
    ModelEntry(
        "HistGradientBoosting",
        {
            C: _sklearn("ensemble.HistGradientBoostingClassifier"),
            R: _sklearn("ensemble.HistGradientBoostingRegressor"),
        },
        "histogram gradient boosting",
    ),
    ModelEntry(
        "SVM",
        {C: _sklearn("svm.SVC", probability=True), R: _sklearn("svm.SVR", seeded=False)},
        "support vector machine (SVC with probabilities / SVR)",
    ),
    ModelEntry(
        "NeuralNet",
        {
            C: _sklearn("neural_network.MLPClassifier", max_iter=1000, early_stopping=True),
            R: _sklearn("neural_network.MLPRegressor", max_iter=1000, early_stopping=True),
        },
        "multi-layer perceptron with early stopping",
    ),
    ModelEntry(
        "Lasso", {R: _sklearn("linear_model.Lasso", max_iter=10000)}, "L1 linear regression"
    ),
    ModelEntry("Ridge", {R: _sklearn("linear_model.Ridge")}, "L2 linear regression"),
    ModelEntry(
        "LightGBM",
        {C: _lightgbm_classifier, R: _lightgbm_regressor},
        "LightGBM gradient boosting (optional package lightgbm)",
        requires="lightgbm",
        stem="lightgbm",
    ),
    ModelEntry(
        "XGBoost",
        {C: _xgboost_classifier, R: _xgboost_regressor},
        "XGBoost gradient boosting (optional package xgboost)",
        requires="xgboost",
        stem="xgboost",
    ),
]

MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}


def list_models(task: Task | str | None = None, *, include_unavailable: bool = False) -> list[str]:
    """Zoo model names for ``task`` (every task when ``None``); installed ones unless asked."""
    wanted = Task(task) if task is not None else None
    return [
        entry.name
        for entry in MODELS.values()
        if (wanted is None or wanted in entry.tasks) and (include_unavailable or entry.available)
    ]


def get_model_entry(name: str, task: Task | str) -> ModelEntry:
    """The zoo entry for ``name`` and ``task``; ``SpecError`` listing valid names otherwise."""
    task = Task(task)
    entry = MODELS.get(name)
    if entry is None or task not in entry.tasks:
        why = (
            f"model {name!r} does not do {task.value}"
            if entry is not None
            else f"unknown model {name!r}"
        )
        raise SpecError(f"{why}; valid {task.value} models: {', '.join(list_models(task))}")
    if not entry.available:
        raise SpecError(
            f"model {name!r} needs the optional package {entry.requires!r} "
            f"(pip install {entry.requires}); installed {task.value} models: "
            f"{', '.join(list_models(task))}"
        )
    return entry


def build_model(name: str, task: Task | str, seed: int = 42) -> BaseEstimator:
    """A fresh, unfitted estimator for ``name`` and ``task``, seeded where it has a random_state."""
    entry = get_model_entry(name, task)
    return entry.factories[Task(task)](seed)
