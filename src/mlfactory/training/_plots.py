"""Evaluation plots of a fitted model on held-out data (figures only; callers save them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
)

__all__ = ["evaluation_figure"]


def evaluation_figure(
    estimator: BaseEstimator, X: pd.DataFrame, y: pd.Series, task: str, title: str = ""
) -> Figure:
    """ROC + precision-recall (binary), confusion matrix (multiclass), predicted vs actual.

    Built on a bare :class:`Figure` (no pyplot state), so it is safe in threads and servers.
    """
    if task == "regression":
        figure = Figure(figsize=(5.5, 5))
        axis = figure.subplots()
        predicted = estimator.predict(X)
        axis.scatter(y, predicted, s=8, alpha=0.5)
        low = float(np.nanmin([y.min(), predicted.min()]))
        high = float(np.nanmax([y.max(), predicted.max()]))
        axis.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
        axis.set_xlabel("actual")
        axis.set_ylabel("predicted")
        axis.legend()
    elif y.nunique() == 2:
        figure = Figure(figsize=(11, 5))
        roc_axis, pr_axis = figure.subplots(1, 2)
        RocCurveDisplay.from_estimator(estimator, X, y, ax=roc_axis)
        roc_axis.plot([0, 1], [0, 1], color="grey", linestyle="--")
        PrecisionRecallDisplay.from_estimator(estimator, X, y, ax=pr_axis)
        roc_axis.set_title("ROC (held-out)")
        pr_axis.set_title("precision-recall (held-out)")
    else:
        figure = Figure(figsize=(6, 5))
        axis = figure.subplots()
        ConfusionMatrixDisplay.from_estimator(estimator, X, y, ax=axis)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
