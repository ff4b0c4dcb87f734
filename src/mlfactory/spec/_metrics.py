"""Scoring metrics: valid scikit-learn scorer names, per task, with sensible defaults."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from sklearn.metrics import get_scorer, get_scorer_names, make_scorer

from mlfactory.datasets._base import Task
from mlfactory.exceptions import SpecError

__all__ = [
    "BINARY_ONLY_METRICS",
    "DEFAULT_SCORING",
    "MULTICLASS_DEFAULT_SCORING",
    "check_metrics",
    "metric_task",
    "metrics_for",
    "positive_class",
    "scorer_for",
    "scorers_for",
]

DEFAULT_SCORING: dict[Task, tuple[str, ...]] = {
    Task.CLASSIFICATION: ("neg_log_loss", "roc_auc", "f1", "accuracy", "precision", "recall"),
    Task.REGRESSION: ("neg_root_mean_squared_error", "neg_mean_absolute_error", "r2"),
}
MULTICLASS_DEFAULT_SCORING: tuple[str, ...] = (
    "neg_log_loss",
    "roc_auc_ovr",
    "f1_macro",
    "accuracy",
    "precision_macro",
    "recall_macro",
)
#: Scorers defined for two classes only (use the ``_macro`` / ``_ovr`` variants for more).
BINARY_ONLY_METRICS = frozenset(
    {"roc_auc", "f1", "precision", "recall", "jaccard", "average_precision", "neg_brier_score"}
    | {"positive_likelihood_ratio", "neg_negative_likelihood_ratio", "d2_brier_score"}
)


def metric_task(name: str) -> Task | None:
    """The task a scorer belongs to (``None`` for clustering scores)."""
    module = get_scorer(name)._score_func.__module__
    if module.endswith("_regression"):
        return Task.REGRESSION
    if module.endswith(("_classification", "_ranking", "_scorer")):
        return Task.CLASSIFICATION
    return None


def metrics_for(task: Task | str) -> list[str]:
    """Every scorer name that fits ``task``."""
    return [name for name in get_scorer_names() if metric_task(name) == Task(task)]


def check_metrics(names: Sequence[str], task: Task | str | None) -> None:
    """``SpecError`` for a name scikit-learn does not know, or one that does not fit the task."""
    valid = set(get_scorer_names())
    for name in names:
        if name not in valid:
            raise SpecError(
                f"unknown metric {name!r}; valid metrics"
                + (f" for {Task(task).value}" if task is not None else "")
                + f": {', '.join(metrics_for(task) if task is not None else sorted(valid))}"
            )
        if task is not None and metric_task(name) != Task(task):
            raise SpecError(
                f"metric {name!r} does not score {Task(task).value}; valid metrics for "
                f"{Task(task).value}: {', '.join(metrics_for(task))}"
            )


def positive_class(y: Any) -> Any | None:
    """The class binary metrics (f1, precision, recall...) score for target ``y``: ``None``
    (scikit-learn's default, 1) when ``y`` has other than two classes or 1 is one of them; else
    the last class in sorted order, the one ``roc_auc`` and ``predict_proba[:, 1]`` use (``"yes"``
    of ``"no"``/``"yes"``, ``"good"`` of ``"bad"``/``"good"``)."""
    import pandas as pd

    classes = pd.Series(y).dropna().unique()
    if len(classes) != 2 or any(c is True or (c == 1 and c is not False) for c in classes):
        return None
    try:
        ordered = sorted(classes)
    except TypeError:  # labels of mixed types: the order sklearn's LabelEncoder uses
        ordered = sorted(classes, key=str)
    return ordered[-1]


def scorer_for(name: str, y: Any = None) -> Any:
    """``get_scorer(name)``, its ``pos_label`` set to :func:`positive_class` of ``y`` when the
    labels are not 0/1: text labels (``"no"``/``"yes"``) would fail every binary metric with
    "pos_label=1 is not a valid label"."""
    base = get_scorer(name)
    positive = positive_class(y) if y is not None else None
    func = getattr(base, "_score_func", None)
    kwargs = dict(getattr(base, "_kwargs", None) or {})
    if positive is None or func is None or "pos_label" in kwargs:
        return base
    if "pos_label" not in inspect.signature(func).parameters:
        return base
    return make_scorer(
        func,
        response_method=base._response_method,
        greater_is_better=base._sign > 0,
        pos_label=positive,
        **kwargs,
    )


def scorers_for(names: Sequence[str], y: Any = None) -> dict[str, Any]:
    """:func:`scorer_for` of every name."""
    return {name: scorer_for(name, y) for name in names}
