"""The exact skops allow-list covers every model of the zoo with every recipe, and no more."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline

from mlfactory.datasets._base import ColumnRoles, Task
from mlfactory.models._zoo import MODELS
from mlfactory.preprocessing._recipes import build_recipe, list_recipes
from mlfactory.serialization import TRUSTED_TYPES, UnsafeModelError, skops_trusted_types


def _frame(rows: int = 120) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.exponential(size=rows) * 10,
            "c": rng.choice(["x", "y", "z"], rows),
            "d": rng.choice([True, False], rows),
        }
    )
    X.loc[::7, "a"] = np.nan
    y_class = pd.Series((X["a"].fillna(0) > 0).astype(int))
    y_reg = X["b"] + rng.normal(size=rows)
    return X, y_class, y_reg


CELLS = [
    (model, task, recipe)
    for model, entry in MODELS.items()
    if entry.available
    for task in entry.factories
    for recipe in list_recipes()
]


@pytest.mark.parametrize(("model", "task", "recipe"), CELLS)
def test_every_zoo_pipeline_needs_only_allow_listed_types(model, task, recipe):
    X, y_class, y_reg = _frame()
    roles = ColumnRoles(numeric=("a", "b"), categorical=("c",), boolean=("d",), skewed=("b",))
    pipeline = Pipeline(
        [("preproc", build_recipe(recipe, roles, X)), ("clf", MODELS[model].factories[task](0))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits say nothing here
        pipeline.fit(X, y_class if task == Task.CLASSIFICATION else y_reg)
    needed = skops_trusted_types(pipeline)
    assert set(needed) <= TRUSTED_TYPES
    assert sio.loads(sio.dumps(pipeline), trusted=needed).predict(X.head(3)).shape == (3,)


def test_a_type_outside_the_list_is_refused_at_logging_time():
    from sklearn.preprocessing import FunctionTransformer

    with pytest.raises(UnsafeModelError, match=r"numpy\.testing\._private\.utils\.runstring"):
        skops_trusted_types(FunctionTransformer(np.testing._private.utils.runstring))
