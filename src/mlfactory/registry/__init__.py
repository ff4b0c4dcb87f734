"""Model registry: promote runs to versions with aliases, and load versions safely.

The names below load their module when first used (as :mod:`mlfactory.tracking` does): listing
models imports MLflow's client but not the loading side (scikit-learn, pandas, skops), and an
empty store answers before MLflow is imported (issue #21).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlfactory._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
