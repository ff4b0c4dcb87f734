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

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import SVC, SVR

from mlfactory.datasets._base import Task
from mlfactory.exceptions import SpecError

__all__ = ["MODELS", "ModelEntry", "build_model", "get_model_entry", "list_models", "snake_name"]

Factory = Callable[[int], BaseEstimator]


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
    ModelEntry("NaiveBayes", {C: lambda seed: GaussianNB()}, "Gaussian naive Bayes"),
    ModelEntry(
        "LogisticRegression",
        {C: lambda seed: LogisticRegression(max_iter=5000, random_state=seed)},
        "L2-penalised logistic regression (lbfgs, max_iter=5000)",
    ),
    ModelEntry(
        "KNN",
        {C: lambda seed: KNeighborsClassifier(), R: lambda seed: KNeighborsRegressor()},
        "k nearest neighbours",
    ),
    ModelEntry(
        "RandomForest",
        {
            C: lambda seed: RandomForestClassifier(random_state=seed),
            R: lambda seed: RandomForestRegressor(random_state=seed),
        },
        "random forest (100 trees)",
    ),
    ModelEntry(
        "HistGradientBoosting",
        {
            C: lambda seed: HistGradientBoostingClassifier(random_state=seed),
            R: lambda seed: HistGradientBoostingRegressor(random_state=seed),
        },
        "histogram gradient boosting",
    ),
    ModelEntry(
        "SVM",
        {C: lambda seed: SVC(probability=True, random_state=seed), R: lambda seed: SVR()},
        "support vector machine (SVC with probabilities / SVR)",
    ),
    ModelEntry(
        "NeuralNet",
        {
            C: lambda seed: MLPClassifier(max_iter=1000, early_stopping=True, random_state=seed),
            R: lambda seed: MLPRegressor(max_iter=1000, early_stopping=True, random_state=seed),
        },
        "multi-layer perceptron with early stopping",
    ),
    ModelEntry(
        "Lasso", {R: lambda seed: Lasso(max_iter=10000, random_state=seed)}, "L1 linear regression"
    ),
    ModelEntry("Ridge", {R: lambda seed: Ridge(random_state=seed)}, "L2 linear regression"),
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
