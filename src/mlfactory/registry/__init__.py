"""Model registry: promote runs to versions with aliases, and load versions safely.

The names below load their module when first used (as :mod:`mlfactory.tracking` does): listing
models imports MLflow's client but not the loading side (scikit-learn, pandas, skops), and an
empty store answers before MLflow is imported (issue #21).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlfactory.registry._load import InputColumn, LoadedModel, load_model, verify_model
    from mlfactory.registry._registry import (
        DEFAULT_ALIAS,
        ModelRef,
        VersionInfo,
        best_run,
        describe_model,
        list_models,
        parse_model_ref,
        promote,
        resolve_version,
    )

_WHERE = {
    "_load": ("InputColumn", "LoadedModel", "load_model", "verify_model"),
    "_registry": (
        "DEFAULT_ALIAS",
        "ModelRef",
        "VersionInfo",
        "best_run",
        "describe_model",
        "list_models",
        "parse_model_ref",
        "promote",
        "resolve_version",
    ),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "DEFAULT_ALIAS",
    "InputColumn",
    "LoadedModel",
    "ModelRef",
    "VersionInfo",
    "best_run",
    "describe_model",
    "list_models",
    "load_model",
    "parse_model_ref",
    "promote",
    "resolve_version",
    "verify_model",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'mlfactory.registry' has no attribute {name!r}")
    found = getattr(import_module(f"mlfactory.registry.{module}"), name)
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])
