"""Experiment specs: a validated TOML file that builds pipelines, splits and CV for the runner."""

from mlfactory.spec._load import (
    apply_overrides,
    check_param_names,
    dataset_catalog,
    load_spec,
    masked_spec_text,
    parse_override_value,
    spec_from_dict,
    validate_spec,
)
from mlfactory.spec._metrics import (
    BINARY_ONLY_METRICS,
    DEFAULT_SCORING,
    MULTICLASS_DEFAULT_SCORING,
    check_metrics,
    metric_task,
    metrics_for,
)
from mlfactory.spec._resolve import (
    ResolvedCell,
    ResolvedSpec,
    make_cv,
    resolve_spec,
    scoring_for,
)
from mlfactory.spec._schema import CVSpec, ExperimentSpec, SearchSpec

__all__ = [
    "BINARY_ONLY_METRICS",
    "DEFAULT_SCORING",
    "MULTICLASS_DEFAULT_SCORING",
    "CVSpec",
    "ExperimentSpec",
    "ResolvedCell",
    "ResolvedSpec",
    "SearchSpec",
    "apply_overrides",
    "check_metrics",
    "check_param_names",
    "dataset_catalog",
    "load_spec",
    "make_cv",
    "masked_spec_text",
    "metric_task",
    "metrics_for",
    "parse_override_value",
    "resolve_spec",
    "scoring_for",
    "spec_from_dict",
    "validate_spec",
]
