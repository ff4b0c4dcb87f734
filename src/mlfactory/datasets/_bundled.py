"""scikit-learn's bundled datasets (no download): ``breast_cancer`` and ``diabetes``."""

from __future__ import annotations

import re

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.settings import Settings

__all__ = ["load_breast_cancer", "load_diabetes"]


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def load_breast_cancer(*, settings: Settings | None = None) -> Dataset:
    """Wisconsin breast cancer (569 rows, 30 numeric features); target 1 = benign, 0 = malignant."""
    from sklearn import datasets

    bunch = datasets.load_breast_cancer(as_frame=True)
    X = bunch.data.rename(columns=_snake)
    return Dataset(
        name="breast_cancer",
        X=X,
        y=bunch.target.astype(int).rename("benign"),
        task=Task.CLASSIFICATION,
        roles=ColumnRoles(numeric=tuple(X.columns)),
        description="Wisconsin diagnostic breast cancer: 1 = benign, 0 = malignant (scikit-learn).",
        source="sklearn.datasets.load_breast_cancer",
        metadata={"positive_label": "1"},
    )


def load_diabetes(*, settings: Settings | None = None) -> Dataset:
    """Diabetes progression after one year (442 rows, 10 unscaled numeric features)."""
    from sklearn import datasets

    bunch = datasets.load_diabetes(as_frame=True, scaled=False)
    X = bunch.data.rename(columns=_snake)
    return Dataset(
        name="diabetes",
        X=X,
        y=bunch.target.rename("progression"),
        task=Task.REGRESSION,
        roles=ColumnRoles(numeric=tuple(X.columns)),
        description="Diabetes disease progression one year after baseline (scikit-learn).",
        source="sklearn.datasets.load_diabetes",
    )
