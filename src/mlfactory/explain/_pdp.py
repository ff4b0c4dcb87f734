"""Partial dependence of a fitted pipeline's output on one or two input columns, as tables.

scikit-learn's ``partial_dependence`` refuses integer columns (it would round a fractional grid
silently) and cannot sort categories mixed with missing values. So it is handed a *copy* of the
rows in which integer columns are float64 and every integer column gets an integer-valued grid:
the model is asked about values it could really be given, and its own input is left alone.
Columns are categories when their dtype says so (text, ``category``, booleans) or when the
pipeline's preprocessing one-hot (or ordinal) encodes them, whatever their dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype
from sklearn.inspection import partial_dependence
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from mlfactory.exceptions import DataError

__all__ = [
    "PartialDependence",
    "categorical_columns",
    "encoded_columns",
    "partial_dependence_tables",
    "top_pair",
]


@dataclass
class PartialDependence:
    """Average model output over the data while one (or two) columns are set to grid values.

    ``one_way``: feature, value, average (one block per feature, grid order).
    ``two_way``: value_x, value_y, average for ``pair`` (or ``None``).
    ``output`` says what ``average`` is: ``P(class=…)`` for classifiers, the prediction otherwise.
    """

    one_way: pd.DataFrame
    two_way: pd.DataFrame | None
    features: list[str]
    pair: tuple[str, str] | None
    output: str
    categorical: list[str] = field(default_factory=list)
    deciles: dict[str, np.ndarray] = field(default_factory=dict)


def _encodes(transformer: Any) -> bool:
    """Whether a (fitted) transformer or pipeline of them encodes its columns as categories."""
    if isinstance(transformer, OneHotEncoder | OrdinalEncoder):
        return True
    return any(_encodes(step) for _, step in getattr(transformer, "steps", []))


def encoded_columns(model: Any) -> set[str]:
    """Input columns a pipeline's first step (a ``ColumnTransformer``) encodes as categories."""
    steps = getattr(model, "steps", None)
    if not steps:
        return set()
    head = steps[0][1]
    groups = getattr(head, "transformers_", None) or getattr(head, "transformers", None) or []
    found: set[str] = set()
    for _name, transformer, columns in groups:
        if _encodes(transformer) and isinstance(columns, list | tuple):
            found.update(str(c) for c in columns)
    return found


def categorical_columns(X: pd.DataFrame, model: Any = None) -> list[str]:
    """Columns partial dependence treats as categories.

    Non-numeric and boolean columns, and (given the fitted ``model``) the columns its
    preprocessing encodes as categories whatever their dtype (e.g. integer codes one-hot encoded).
    """
    encoded = encoded_columns(model) if model is not None else set()
    return [
        str(c)
        for c in X.columns
        if is_bool_dtype(X[c]) or not is_numeric_dtype(X[c]) or str(c) in encoded
    ]


def _is_integer(column: pd.Series) -> bool:
    return is_integer_dtype(column) and not is_bool_dtype(column)


def _integer_grid(column: pd.Series, resolution: int) -> np.ndarray:
    """Integer-valued grid: every value when few, else the rounded 5-95% percentile grid."""
    values = column.dropna().astype("float64").to_numpy()
    uniques = np.unique(values)
    if len(uniques) <= resolution:
        return uniques
    low, high = np.percentile(values, [5, 95])
    return np.unique(np.round(np.linspace(low, high, resolution)))


def _categories(column: pd.Series) -> np.ndarray:
    """The column's observed categories, missing values left out, in a stable order."""
    uniques = pd.unique(column.dropna())
    try:
        ordered = sorted(uniques)
    except TypeError:
        ordered = sorted(uniques, key=str)
    return np.asarray(ordered, dtype=object if any(isinstance(v, str) for v in ordered) else None)


def _for_sklearn(
    X: pd.DataFrame, features: Sequence[str], categorical: Sequence[str], resolution: int
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """A copy of ``X`` partial dependence accepts, and the grids it cannot choose well itself.

    Integer columns become float64 (scikit-learn refuses integers), with an integer-valued grid;
    categorical columns with missing values get their non-missing categories as the grid.
    """
    integers = [c for c in X.columns if _is_integer(X[c]) and str(c) not in categorical]
    frame = X.astype({c: "float64" for c in integers}) if integers else X
    grids: dict[str, np.ndarray] = {}
    for feature in features:
        if feature in integers:
            grids[feature] = _integer_grid(X[feature], resolution)
        elif feature in categorical and X[feature].isna().any():
            grids[feature] = _categories(X[feature])
    return frame, grids


def top_pair(ranked: Sequence[str], categorical: Sequence[str]) -> tuple[str, str] | None:
    """The two highest-ranked features of the same kind (numeric or categorical) as the first.

    Falls back to the other kind; ``None`` when no two features share a kind.
    """
    if not ranked:
        return None
    first_kind = ranked[0] in categorical
    for kind in (first_kind, not first_kind):
        same = [f for f in ranked if (f in categorical) == kind]
        if len(same) >= 2:
            return same[0], same[1]
    return None


def _deciles(column: pd.Series) -> np.ndarray:
    return np.nanpercentile(column.astype(float), np.arange(10, 100, 10))


def _class_index(model: Any, target_class: Any) -> tuple[int, str]:
    classes = list(getattr(model, "classes_", []))
    if not classes:
        return 0, "prediction"
    label = classes[-1] if target_class is None else target_class
    if label not in classes:
        raise DataError(f"class {label!r} is not one of the model's classes {classes}")
    index = classes.index(label)
    return (0 if len(classes) == 2 else index), f"P(class={label})"


def _average(result: Any, index: int) -> np.ndarray:
    average = np.asarray(result["average"])
    return average[index] if average.shape[0] > index else average[0]


def partial_dependence_tables(
    model: Any,
    X: pd.DataFrame,
    features: Sequence[str],
    *,
    pair: tuple[str, str] | None = None,
    grid_resolution: int = 20,
    pair_grid_resolution: int = 10,
    target_class: Any = None,
) -> PartialDependence:
    """One-way partial dependence for each of ``features`` and two-way for ``pair``.

    The pair uses a coarser grid (``pair_grid_resolution``): its cost grows with its square.

    Classifiers: the average predicted probability of ``target_class`` (default: the last class,
    the positive class of a binary model). Categorical columns (see :func:`categorical_columns`)
    use their categories; integer columns an integer-valued grid (see the module docstring).
    """
    unknown = [f for f in [*features, *(pair or ())] if f not in X.columns]
    if unknown:
        raise DataError(
            f"partial dependence: unknown feature(s) {unknown}; expected some of {list(X.columns)}"
        )
    categorical = categorical_columns(X, model)
    if pair is not None and (pair[0] in categorical) != (pair[1] in categorical):
        raise DataError(
            f"two-way partial dependence of {pair}: pair two numeric or two categorical "
            f"features, not one of each (categorical: {categorical})"
        )
    index, output = _class_index(model, target_class)
    common = dict(
        categorical_features=categorical or None,
        grid_resolution=grid_resolution,
        kind="average",
    )
    frames = []
    deciles: dict[str, np.ndarray] = {}
    for feature in features:
        frame, grids = _for_sklearn(X, [feature], categorical, grid_resolution)
        result = partial_dependence(model, frame, [feature], custom_values=grids, **common)
        grid = result["grid_values"][0]
        frames.append(
            pd.DataFrame({"feature": feature, "value": grid, "average": _average(result, index)})
        )
        if feature not in categorical:
            deciles[feature] = _deciles(X[feature])
    one_way = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    two_way = None
    if pair is not None:
        frame, grids = _for_sklearn(X, list(pair), categorical, pair_grid_resolution)
        result = partial_dependence(
            model,
            frame,
            list(pair),
            custom_values=grids,
            **{**common, "grid_resolution": pair_grid_resolution},
        )
        grid_x, grid_y = result["grid_values"]
        surface = _average(result, index)  # shape (len(grid_x), len(grid_y))
        xx, yy = np.meshgrid(np.arange(len(grid_x)), np.arange(len(grid_y)), indexing="ij")
        two_way = pd.DataFrame(
            {
                "value_x": np.asarray(grid_x)[xx.ravel()],
                "value_y": np.asarray(grid_y)[yy.ravel()],
                "average": surface.ravel(),
            }
        )
        for feature in pair:
            if feature not in categorical and feature not in deciles:
                deciles[feature] = _deciles(X[feature])
    return PartialDependence(one_way, two_way, list(features), pair, output, categorical, deciles)
