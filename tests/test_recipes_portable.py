"""Recipes are scikit-learn classes only, and score exactly as the old ``to_float`` cast did.

A model whose file names a function or class of mlfactory cannot be loaded where only its
``requirements.txt`` is installed (stock ``mlflow.pyfunc.load_model``, ``mlflow models serve``).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from io import BytesIO

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlfactory.datasets._base import ColumnRoles, Task
from mlfactory.models._zoo import MODELS
from mlfactory.preprocessing._recipes import build_recipe, list_recipes

ROLES = ColumnRoles(numeric=("a", "b"), categorical=("c",), boolean=("d", "e"), skewed=("b",))


def legacy_to_float(X):
    """The cast the recipes used before (``mlfactory.preprocessing._recipes.to_float``)."""
    if isinstance(X, pd.DataFrame):
        return X.astype("float64").to_numpy()
    return np.asarray(X, dtype="float64")


def _frame(boolean: str, rows: int = 160) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Numeric, skewed, categorical and two boolean columns; booleans of the given kind."""
    rng = np.random.default_rng(1)
    flags = {name: rng.random(rows) < p for name, p in (("d", 0.3), ("e", 0.5))}
    X = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.exponential(size=rows) * 10,
            "c": rng.choice(["x", "y", "z"], rows),
        }
    )
    X.loc[::7, "a"] = np.nan
    for name, values in flags.items():
        if boolean == "bool":  # numpy bool: no missing values
            X[name] = values
        elif boolean == "nullable":  # pandas "boolean" with <NA>, as the server builds it
            column = pd.array(values, dtype="boolean")
            column[::9] = pd.NA
            X[name] = column
        elif boolean == "object":  # True/False/None, as JSON records give them
            X[name] = pd.Series(values, dtype=object).where(np.arange(rows) % 11 != 0, None)
        else:  # 0/1 floats with NaN (credit's flags read back from a CSV)
            X[name] = np.where(np.arange(rows) % 13 == 0, np.nan, values.astype(float))
    y_class = pd.Series((X["a"].fillna(0) + X["d"].astype("float64").fillna(0) > 0.3).astype(int))
    y_reg = X["b"] + 3 * X["e"].astype("float64").fillna(0) + rng.normal(size=rows)
    return X, y_class, y_reg


def _legacy(preprocessor):
    """The same recipe with every ``to_float`` step replaced by the old FunctionTransformer."""
    old = clone(preprocessor)
    keys = [k for k in old.get_params(deep=True) if k.endswith("__to_float")]
    old.set_params(
        **{k: FunctionTransformer(legacy_to_float, feature_names_out="one-to-one") for k in keys}
    )
    return old


BOOLEAN_KINDS = ["bool", "nullable", "object", "float"]


@pytest.mark.parametrize("recipe", list(list_recipes()))
@pytest.mark.parametrize("boolean", BOOLEAN_KINDS)
def test_recipes_transform_exactly_as_the_old_cast(recipe, boolean):
    X, _, _ = _frame(boolean)
    new = build_recipe(recipe, ROLES, X)
    assert [k for k in new.get_params(deep=True) if k.endswith("__to_float")]  # a cast is there
    old = _legacy(new)
    got, expected = new.fit_transform(X), old.fit_transform(X)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)  # bit for bit, NaN where NaN
    assert list(new.get_feature_names_out()) == list(old.get_feature_names_out())
    np.testing.assert_array_equal(new.transform(X.head(17)), old.transform(X.head(17)))


CELLS = [
    (model, task, recipe)
    for model, entry in MODELS.items()
    if entry.available
    for task in entry.factories
    for recipe in list_recipes()
]


def _schema(pipeline) -> str:
    with zipfile.ZipFile(BytesIO(sio.dumps(pipeline))) as archive:
        return archive.read("schema.json").decode()


@pytest.mark.parametrize(("model", "task", "recipe"), CELLS)
def test_every_pipeline_is_scikit_learn_only_and_predicts_as_before(model, task, recipe):
    X, y_class, y_reg = _frame("nullable")
    y = y_class if task == Task.CLASSIFICATION else y_reg
    preprocessor = build_recipe(recipe, ROLES, X)
    factory = MODELS[model].factories[task]
    new = Pipeline([("preproc", preprocessor), ("model", factory(0))])
    old = Pipeline([("preproc", _legacy(preprocessor)), ("model", factory(0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits say nothing here
        new.fit(X, y)
        old.fit(X, y)
    # nothing of mlfactory in the file: neither a type to trust nor any name in its schema
    assert not [t for t in sio.get_untrusted_types(data=sio.dumps(new)) if "mlfactory" in t]
    modules = {
        node["__module__"]
        for node in _walk(json.loads(_schema(new)))
        if isinstance(node, dict) and "__module__" in node
    }
    assert not [m for m in modules if m.split(".")[0] == "mlfactory"], modules
    assert "mlfactory" not in _schema(new)
    np.testing.assert_allclose(new.predict(X), old.predict(X), rtol=1e-9, atol=1e-9)
    if hasattr(new, "predict_proba"):
        np.testing.assert_allclose(new.predict_proba(X), old.predict_proba(X), atol=1e-9)


def _walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def test_the_allow_list_trusts_nothing_of_mlfactory():
    from mlfactory.serialization import TRUSTED_TYPES

    assert not [name for name in TRUSTED_TYPES if name.split(".")[0] == "mlfactory"]
