"""Parameter grids: JSON files shipped in the package or next to a spec, or inline tables.

A grid is ``{"clf__C": [0.01, 0.1], ...}`` (or a list of such dicts, as ``GridSearchCV`` takes).
Shipped grids live in ``mlfactory/resources/grids/<stem>.json``, with ``<stem>_<task>.json`` where
classification and regression differ; Optuna search spaces in ``resources/grids/optuna/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from mlfactory.datasets._base import Task
from mlfactory.exceptions import SpecError
from mlfactory.models._zoo import MODELS

__all__ = [
    "ParamGrid",
    "default_distributions_path",
    "default_grid_path",
    "find_grid_file",
    "grids_dir",
    "load_grid",
    "load_json_file",
]

ParamGrid = dict[str, list[Any]] | list[dict[str, list[Any]]]


def grids_dir() -> Path:
    """Folder of the shipped grids (``mlfactory/resources/grids``)."""
    return Path(str(files("mlfactory").joinpath("resources", "grids")))


def _task_specific(folder: Path, stem: str, task: Task) -> Path:
    specific = folder / f"{stem}_{task.value}.json"
    return specific if specific.is_file() else folder / f"{stem}.json"


def default_grid_path(model: str, task: Task | str) -> Path:
    """The shipped default grid of a zoo model for a task."""
    if model not in MODELS:
        raise SpecError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    return _task_specific(grids_dir(), MODELS[model].snake, Task(task))


def default_distributions_path(model: str, task: Task | str) -> Path:
    """The shipped default Optuna search space of a zoo model for a task."""
    if model not in MODELS:
        raise SpecError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    return _task_specific(grids_dir() / "optuna", MODELS[model].snake, Task(task))


def find_grid_file(name: str | Path, base_dir: Path | None = None) -> Path:
    """Resolve a grid path: as given if absolute, else the spec folder, then the shipped grids.

    ``grids/x.json`` and ``x.json`` both find the shipped ``resources/grids/x.json``.
    """
    path = Path(name)
    candidates = [path] if path.is_absolute() else []
    if not path.is_absolute():
        if base_dir is not None:
            candidates.append(Path(base_dir) / path)
        candidates += [grids_dir().parent / path, grids_dir() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = sorted(p.relative_to(grids_dir()).as_posix() for p in grids_dir().rglob("*.json"))
    raise SpecError(
        f"grid file {str(name)!r} not found (looked in: "
        f"{', '.join(str(c) for c in candidates)}); shipped grids: {', '.join(shipped)}"
    )


def load_json_file(path: Path) -> Any:
    """Read a JSON file; ``SpecError`` naming the file and line when it is malformed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None


def _check_grid(grid: Any, where: str) -> ParamGrid:
    if isinstance(grid, Sequence) and not isinstance(grid, str):
        if not grid:
            raise SpecError(f"{where}: empty list of grids; expected at least one table")
        return [_check_one(item, where) for item in grid]
    return _check_one(grid, where)


def _check_one(grid: Any, where: str) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise SpecError(
            f"{where}: a grid must be a table of parameter -> list of values, "
            f"got {type(grid).__name__}"
        )
    checked: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(
                f"{where}: grid entry {key!r} must be a non-empty list of values, got {values!r}"
            )
        checked[str(key)] = list(values)
    return checked


def load_grid(
    source: str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    base_dir: Path | None = None,
) -> ParamGrid:
    """A validated grid from a file name (see :func:`find_grid_file`) or an inline table."""
    if isinstance(source, str | Path):
        path = find_grid_file(source, base_dir)
        return _check_grid(load_json_file(path), str(path))
    return _check_grid(source, "inline param_grid")
