"""A logged model's pip requirements: pinned, complete, and never mlfactory."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import sqlparse
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlfactory.datasets._base import ColumnRoles
from mlfactory.preprocessing import build_recipe
from mlfactory.training._requirements import model_requirements


def test_a_recipe_pipeline_pins_its_libraries():
    roles = ColumnRoles(numeric=("a",), categorical=("c",), boolean=("b",))
    pipeline = Pipeline([("pre", build_recipe("basic", roles)), ("clf", LogisticRegression())])
    assert model_requirements(pipeline) == [
        f"{name}=={version(name)}" for name in ("scikit-learn", "skops", "numpy", "scipy", "pandas")
    ]


def test_a_class_or_function_of_another_library_adds_that_library():
    pipeline = Pipeline(
        [("fmt", FunctionTransformer(sqlparse.format)), ("clf", LogisticRegression())]
    )
    assert model_requirements(pipeline)[-1] == f"sqlparse=={version('sqlparse')}"


def test_anything_of_mlfactory_is_refused():
    from mlfactory.datasets import load_dataset

    with pytest.raises(ValueError, match="must not need mlfactory"):
        model_requirements(Pipeline([("f", FunctionTransformer(load_dataset))]))
