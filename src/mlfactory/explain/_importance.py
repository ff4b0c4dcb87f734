"""Permutation importance of a fitted pipeline's input columns, as tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import get_scorer_names

from mlfactory.exceptions import DataError
from mlfactory.spec._metrics import scorer_for

__all__ = ["PermutationImportance", "permutation_importance_table"]


@dataclass
class PermutationImportance:
    """How much the score drops when one input column is shuffled.

    ``table``: feature, mean, std (sorted, largest drop first); ``repeats``: one row per
    (feature, repeat) with the drop, for the box plot; ``baseline``: the unshuffled score.
    """

    table: pd.DataFrame
    repeats: pd.DataFrame
    scoring: str
    baseline: float
    n_repeats: int

    def top(self, k: int) -> list[str]:
        """The ``k`` most important features."""
        return self.table["feature"].head(k).tolist()


def permutation_importance_table(
    model: object,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    scoring: str | None = None,
    n_repeats: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
) -> PermutationImportance:
    """Permutation importance of every column of ``X`` (seeded, ``n_repeats`` shuffles each).

    ``scoring`` is a scikit-learn scorer name (e.g. the run's refit metric); ``None`` uses the
    estimator's own ``score`` (accuracy for classifiers, R² for regressors).
    """
    if n_repeats < 1:
        raise DataError(f"n_repeats must be at least 1, got {n_repeats}")
    if scoring is not None and scoring not in get_scorer_names():
        raise DataError(f"unknown scoring {scoring!r}; expected a scikit-learn scorer name")
    scorer = scorer_for(scoring, y) if scoring is not None else None
    result = permutation_importance(
        model, X, y, scoring=scorer, n_repeats=n_repeats, random_state=seed, n_jobs=n_jobs
    )
    features = [str(c) for c in X.columns]
    table = pd.DataFrame(
        {
            "feature": features,
            "mean": result.importances_mean,
            "std": result.importances_std,
        }
    )
    table = table.sort_values(["mean", "feature"], ascending=[False, True], ignore_index=True)
    repeats = pd.DataFrame(
        {
            "feature": np.repeat(features, n_repeats),
            "repeat": np.tile(np.arange(n_repeats), len(features)),
            "importance": result.importances.reshape(-1),
        }
    )
    baseline = float(scorer(model, X, y) if scorer is not None else model.score(X, y))
    return PermutationImportance(table, repeats, scoring or "score", baseline, n_repeats)
