"""Scoring metrics: valid scikit-learn scorer names, per task, with sensible defaults."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import get_scorer, get_scorer_names

from mlfactory.datasets._base import Task
from mlfactory.exceptions import SpecError

__all__ = [
    "BINARY_ONLY_METRICS",
    "DEFAULT_SCORING",
    "MULTICLASS_DEFAULT_SCORING",
    "check_metrics",
    "metric_task",
    "metrics_for",
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
