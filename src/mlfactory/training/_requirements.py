"""The pip requirements a logged model needs to load where nothing but they are installed.

A model's ``requirements.txt`` is what ``mlflow models serve``, ``mlflow.pyfunc.load_model`` in a
fresh environment, or any platform that reads MLflow models installs. It pins the exact versions
that wrote the file (skops restores estimators by their class path and state; another version of
a library may not read it back) and names every library a class of the pipeline comes from, so a
LightGBM or XGBoost pipeline also lists ``lightgbm`` / ``xgboost``. mlfactory itself is never
needed: the recipes are scikit-learn classes only (``mlfactory.preprocessing._recipes``).
MLflow adds its own pin (``mlflow==``) in front.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from typing import Any

__all__ = ["BASE_REQUIREMENTS", "model_requirements"]

# Always: the serializer, the estimators and the arrays/frames they are rebuilt with.
BASE_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "scipy", "pandas")


def _estimators(model: Any) -> Iterator[Any]:
    """``model`` and every estimator nested in it (pipeline steps, column transformers...)."""
    yield model
    if hasattr(model, "get_params"):
        for value in model.get_params(deep=True).values():
            if hasattr(value, "get_params") or callable(value):
                yield value


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()  # scans every installed package: once per process


def _distribution(module: str) -> str | None:
    names = _distributions().get(module.split(".")[0], [])
    return names[0] if names else None


def model_requirements(model: Any) -> list[str]:
    """Pinned requirements for ``model``: the base ones, plus the library of every class in it."""
    wanted = list(BASE_REQUIREMENTS)
    for estimator in _estimators(model):
        module = getattr(type(estimator), "__module__", "") or ""
        if callable(estimator) and not hasattr(estimator, "get_params"):
            module = getattr(estimator, "__module__", "") or ""  # a function (FunctionTransformer)
        top = module.split(".")[0]
        if not top or top in ("builtins", "sklearn", "numpy", "scipy", "pandas"):
            continue
        if top == "mlfactory":
            raise ValueError(
                f"{module}.{getattr(estimator, '__qualname__', type(estimator).__qualname__)} "
                "is part of mlfactory: a logged model must not need mlfactory to load"
            )
        distribution = _distribution(top)
        if distribution is not None and distribution not in wanted:
            wanted.append(distribution)
    pins = []
    for name in wanted:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    return pins
