"""Reading a spec: TOML file, ``key=value`` overrides, schema and name validation."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sklearn.pipeline import Pipeline

from mlfactory._toml import read_toml
from mlfactory._validation import describe_validation_error
from mlfactory.datasets._base import Task
from mlfactory.exceptions import SpecError
from mlfactory.models import (
    MODELS,
    ParamGrid,
    default_distributions_path,
    default_grid_path,
    find_grid_file,
    get_model_entry,
    list_models,
    load_grid,
    load_json_file,
    parse_distributions,
)
from mlfactory.preprocessing import RECIPES
from mlfactory.settings import mask_secrets, mask_urls_in_text
from mlfactory.spec._metrics import DEFAULT_SCORING, check_metrics
from mlfactory.spec._schema import (
    CVSpec,
    ExperimentSpec,
    SearchSpec,
    SegmentsSpec,
    probe_pipeline,
)

__all__ = [
    "apply_overrides",
    "check_param_names",
    "dataset_catalog",
    "field_error",
    "grid_for",
    "load_spec",
    "masked_spec_text",
    "parse_override_value",
    "space_for",
    "spec_from_dict",
    "validate_spec",
]

_SECTIONS: dict[str, type[BaseModel]] = {
    "": ExperimentSpec,
    "cv": CVSpec,
    "search": SearchSpec,
    "segments": SegmentsSpec,
}
_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


# Overrides ---------------------------------------------------------------------------------
def parse_override_value(text: str) -> Any:
    """A TOML literal when ``text`` is one (``10``, ``true``, ``["a"]``), else the text itself."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply Sacred-style ``dotted.key=value`` overrides to a copy of the raw spec table."""
    result = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not key or not all(parts):
            raise SpecError(
                f"override {item!r}: expected key=value, e.g. model=RandomForest, cv.folds=10"
            )
        table = result
        for depth, part in enumerate(parts[:-1]):
            node = table.setdefault(part, {})
            if not isinstance(node, dict):
                prefix = ".".join(parts[: depth + 1])
                raise SpecError(
                    f"override {item!r}: {prefix!r} is {node!r}, not a table; "
                    f"set it as a whole instead ({prefix}={{...}})"
                )
            table = node
        table[parts[-1]] = parse_override_value(raw.strip())
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


# Schema errors -----------------------------------------------------------------------------
def _describe(error: Any) -> str:
    return describe_validation_error(
        error,
        _SECTIONS,
        keep=lambda part: not _is_type_tag(part),
        no_keys="(none: set it as a whole)",
    )


def _is_type_tag(part: Any) -> bool:
    text = str(part).lower()
    return "[" in text or text in _TYPE_TAGS or text.startswith(("function-", "literal"))


def spec_from_dict(
    data: Mapping[str, Any],
    *,
    source: Path | None = None,
    overrides: Sequence[str] = (),
    validate: bool = True,
) -> ExperimentSpec:
    """Build (and by default validate names in) a spec from a raw table."""
    where = str(source) if source is not None else "spec"
    raw = apply_overrides(dict(data), overrides)
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{where}: {_describe(exc.errors()[0])}") from None
    spec._source = source
    if validate:
        validate_spec(spec)
    return spec


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Read, override and validate an experiment spec TOML file; ``SpecError`` on any problem."""
    path = Path(path)
    data = read_toml(path, "spec file")
    return spec_from_dict(data, source=path.resolve(), overrides=overrides)


# The stored copy ---------------------------------------------------------------------------
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def masked_spec_text(text: str) -> str:
    """The spec file as it may be stored: every URL's password and secret query value masked.

    The text is masked in place (comments and layout kept) when that masks every secret the
    parsed spec holds; otherwise the masked table is written out as TOML again.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return mask_urls_in_text(text)
    masked = mask_secrets(data)
    if masked == data:
        return text
    in_place = mask_urls_in_text(text)
    try:
        if mask_secrets(tomllib.loads(in_place)) == tomllib.loads(in_place) == masked:
            return in_place
    except tomllib.TOMLDecodeError:
        pass
    header = "# mlfactory: URLs masked (passwords and secret query values are ***)\n"
    return header + _toml_table(masked, [])


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # TOML spells nan and inf as Python does
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _toml_table(table: Mapping[str, Any], path: list[str]) -> str:
    scalars = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)
    ]
    lines = ([f"[{'.'.join(_toml_key(p) for p in path)}]"] if path else []) + scalars
    text = "\n".join(lines) + "\n" if lines else ""
    for key, value in table.items():
        if isinstance(value, dict):
            text += "\n" + _toml_table(value, [*path, key])
    return text


# Names -------------------------------------------------------------------------------------
def dataset_catalog() -> dict[str, Task | None] | None:
    """Registered dataset names -> task (``None`` if unknown); ``None`` without a registry."""
    try:
        import mlfactory.datasets as datasets
    except ImportError:  # pragma: no cover - the registry ships with mlfactory
        return None
    registry = getattr(datasets, "DATASETS", None)
    if isinstance(registry, Mapping):
        return {name: getattr(entry, "task", None) for name, entry in registry.items()}
    if hasattr(datasets, "list_datasets"):
        return dict.fromkeys(datasets.list_datasets())
    return None


def field_error(spec: ExperimentSpec, field: str, message: str) -> SpecError:
    """A ``SpecError`` naming the spec file and the field."""
    where = str(spec.source) if spec.source is not None else "spec"
    return SpecError(f"{where}: field {field!r}: {message}")


def _check_dataset(spec: ExperimentSpec) -> Task | None:
    if isinstance(spec.dataset, dict):
        if "target" not in spec.dataset or not ({"path", "sql"} & set(spec.dataset)):
            raise field_error(
                spec,
                "dataset",
                f"an inline dataset needs target and path (or sql and url); got keys "
                f"{sorted(spec.dataset)}",
            )
        return spec.task
    catalog = dataset_catalog()
    if catalog is None:
        return spec.task
    if spec.dataset not in catalog:
        raise field_error(
            spec,
            "dataset",
            f"unknown dataset {spec.dataset!r}; valid datasets: {', '.join(catalog)} "
            "(or an inline table {path = ..., target = ...})",
        )
    known = catalog[spec.dataset]
    if spec.task is not None and known is not None and spec.task != known:
        raise field_error(
            spec, "task", f"dataset {spec.dataset!r} is {known.value}, not {spec.task.value}"
        )
    return spec.task or known


def check_param_names(grid: ParamGrid | Mapping[str, Any], pipeline: Pipeline, what: str) -> None:
    """``SpecError`` when a grid names a parameter the pipeline does not have."""
    valid = pipeline.get_params(deep=True)
    tables = grid if isinstance(grid, list) else [grid]
    for table in tables:
        for key in table:
            if key not in valid:
                step = key.split("__", 1)[0]
                related = [k for k in valid if "__" in k and k.startswith(f"{step}__")]
                shown = related or [k for k in valid if "__" in k]
                raise SpecError(
                    f"{what}: {key!r} is not a parameter of the pipeline; valid parameters: "
                    f"{', '.join(shown)}"
                )


def grid_for(spec: ExperimentSpec, model: str, task: Task) -> tuple[ParamGrid, str]:
    """The grid a cell searches and where it came from (file path or ``inline``)."""
    base = spec.source.parent if spec.source is not None else None
    source = spec.search.param_grid
    if source is None:
        path = default_grid_path(model, task)
        return load_grid(path), str(path)
    if isinstance(source, dict) and source and set(source) <= set(MODELS):
        # one grid per model (a matrix of different models): {LogisticRegression = {...}, ...}
        if model not in source:
            path = default_grid_path(model, task)
            return load_grid(path), str(path)
        source = source[model]
    if isinstance(source, str):
        path = find_grid_file(source, base)
        return load_grid(path), str(path)
    return load_grid(source), "inline"


def space_for(spec: ExperimentSpec, model: str, task: Task) -> tuple[dict[str, Any], str]:
    """The declarative search space a cell samples and where it came from."""
    base = spec.source.parent if spec.source is not None else None
    source = spec.search.distributions
    if source is None:
        path = default_distributions_path(model, task)
        raw, origin = load_json_file(path), str(path)
    elif isinstance(source, str):
        path = find_grid_file(source, base)
        raw, origin = load_json_file(path), str(path)
    else:
        raw, origin = source, "inline"
    parse_distributions(raw, where=f"distributions ({origin})")
    return raw, origin


def validate_spec(spec: ExperimentSpec) -> Task | None:
    """Check every name in the spec; returns the task when it is known before loading data."""
    task = _check_dataset(spec)
    for recipe in spec.recipes:
        if recipe not in RECIPES:
            raise field_error(
                spec,
                "preprocessing",
                f"unknown recipe {recipe!r}; valid recipes: {', '.join(RECIPES)}",
            )
    for model in spec.models:
        if task is not None:
            try:
                get_model_entry(model, task)
            except SpecError as exc:
                raise field_error(spec, "model", str(exc)) from None
        elif model not in MODELS or not MODELS[model].available:
            raise field_error(
                spec, "model", f"unknown model {model!r}; valid models: {', '.join(list_models())}"
            )
    scoring = spec.cv.scoring
    if scoring is not None:
        try:
            check_metrics(scoring, task)
        except SpecError as exc:
            raise field_error(spec, "cv.scoring", str(exc)) from None
    refit = spec.search.refit
    if refit is not None:
        try:
            check_metrics([refit], task)
        except SpecError as exc:
            raise field_error(spec, "search.refit", str(exc)) from None
        allowed = scoring or (DEFAULT_SCORING[task] if task is not None else None)
        if allowed is not None and refit not in allowed:
            raise field_error(
                spec, "search.refit", f"{refit!r} is not scored; expected one of {list(allowed)}"
            )
    check_search(spec, task)
    if spec.segments is not None and spec.is_matrix:
        raise field_error(
            spec,
            "segments",
            f"a fleet trains one (recipe, model) pipeline per segment; this spec is a matrix of "
            f"{len(spec.cells())}: {spec.cells()}",
        )
    return task


def check_search(spec: ExperimentSpec, task: Task | None, pipelines: dict | None = None) -> None:
    """Every grid / space key must be a parameter of every cell's pipeline."""
    kind = spec.search.kind
    if kind == "none":
        return
    for recipe, model in spec.cells():
        cell_task = task or MODELS[model].tasks[0]
        pipeline = (pipelines or {}).get((recipe, model)) or probe_pipeline(recipe, model, task)
        label = f"cell ({recipe}, {model})"
        try:
            if kind == "grid" or (
                kind == "random"
                and spec.search.distributions is None
                and spec.search.param_grid is not None
            ):
                grid, origin = grid_for(spec, model, cell_task)
                check_param_names(grid, pipeline, f"grid {origin} for {label}")
            else:
                space, origin = space_for(spec, model, cell_task)
                check_param_names(space, pipeline, f"search space {origin} for {label}")
        except SpecError as exc:
            field = "search.param_grid" if str(exc).startswith("grid") else "search.distributions"
            raise field_error(spec, field, str(exc)) from None
