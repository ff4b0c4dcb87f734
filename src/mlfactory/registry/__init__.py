"""Model registry: promote runs to versions with aliases, and load versions safely."""

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
