"""Parameter grids: JSON files shipped in the package or next to a spec, or inline tables.

A grid is ``{"clf__C": [0.01, 0.1], ...}`` (or a list of such dicts, as ``GridSearchCV`` takes).
Shipped grids live in ``mlfactory/resources/grids/<stem>.json``, with ``<stem>_<task>.json`` where
classification and regression differ; Optuna search spaces in ``resources/grids/optuna/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from mlfactory.datasets._task import Task
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
    "solver_compatible_grid",
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


# LogisticRegression grids: ``penalty`` (deprecated in scikit-learn 1.8) and solver support --------

#: Solvers of ``LogisticRegression`` that support only an L2 penalty (or none, ``C=inf``).
L2_ONLY_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag")
_PENALTY_L1_RATIO = {"l2": 0.0, "l1": 1.0}


def _solver_accepts(solver: str, l1_ratio: float, C: float) -> bool:
    """Whether scikit-learn's ``LogisticRegression`` fits with these (see its ``_check_solver``)."""
    if math.isinf(C):  # no penalty at all
        return solver != "liblinear"
    if l1_ratio == 0:
        return True
    if l1_ratio == 1:
        return solver in ("liblinear", "saga")
    return solver == "saga"


def _logistic_prefix(pipeline: Any) -> str | None:
    """``"clf__"`` when the pipeline's last step is a ``LogisticRegression``, else ``None``."""
    from sklearn.linear_model import LogisticRegression

    steps = getattr(pipeline, "steps", None)
    if not steps or not isinstance(steps[-1][1], LogisticRegression):
        return None
    return f"{steps[-1][0]}__"


def _describe(values: Mapping[str, Any], prefix: str) -> str:
    return ", ".join(f"{k.removeprefix(prefix)}={v!r}" for k, v in values.items())


def _split_logistic(
    grid: dict[str, list[Any]], prefix: str, current: Mapping[str, Any]
) -> tuple[list[dict[str, list[Any]]], list[str]]:
    """One grid table as tables scikit-learn accepts, and the combinations left out."""
    P, R, S, C = (f"{prefix}{name}" for name in ("penalty", "l1_ratio", "solver", "C"))
    if not {P, R, S} & grid.keys():
        return [grid], []
    rest = {k: v for k, v in grid.items() if k not in (P, R, S, C)}
    solvers = grid.get(S, [current[S]])
    ratios = grid.get(R, [current[R]])
    costs = grid.get(C, [current[C]])
    tables: list[dict[str, list[Any]]] = []
    skipped: list[str] = []
    for penalty in grid.get(P, [...]):  # ... = no penalty given: l1_ratio says it
        if penalty is ...:
            options = [(r, costs) for r in ratios]
        elif penalty in _PENALTY_L1_RATIO:
            options = [(_PENALTY_L1_RATIO[penalty], costs)]
        elif penalty is None or penalty == "none":
            options = [(0.0, [float("inf")])]
        elif penalty == "elasticnet":
            if R not in grid:
                raise SpecError(
                    f"grid: {P} = 'elasticnet' needs {R} values (0 < l1_ratio < 1); "
                    "scikit-learn 1.8 deprecated penalty: give l1_ratio alone"
                )
            options = [(r, costs) for r in ratios]
        else:
            raise SpecError(
                f"grid: {P} value {penalty!r} is not a penalty; expected l2, l1, elasticnet "
                "or none (better: l1_ratio 0 for l2, 1 for l1, C=inf for none)"
            )
        for solver in solvers:
            for ratio, cs in options:
                kept = [c for c in cs if _solver_accepts(solver, ratio, float(c))]
                combo = {P: penalty} if penalty is not ... else {R: ratio}
                if not kept:
                    skipped.append(_describe({**combo, S: solver}, prefix))
                    continue
                if len(kept) < len(cs):
                    skipped.append(_describe({**combo, S: solver, C: float("inf")}, prefix))
                table = {**rest, C: kept, R: [ratio], S: [solver]}
                if C not in grid and kept == [current[C]]:
                    del table[C]
                if S not in grid:
                    del table[S]
                if table not in tables:
                    tables.append(table)
    return tables, skipped


def solver_compatible_grid(grid: ParamGrid, pipeline: Any) -> tuple[ParamGrid, list[str]]:
    """A grid without what current scikit-learn rejects or deprecates, for a LogisticRegression.

    ``penalty`` (deprecated in scikit-learn 1.8, removed in 1.10) becomes ``l1_ratio``: ``l2`` ->
    0, ``l1`` -> 1, ``elasticnet`` -> the grid's ``l1_ratio`` values, ``none`` -> ``C = inf``.
    Combinations a solver cannot fit (L1 or elastic-net with lbfgs, newton-cg, newton-cholesky or
    sag; elastic-net with liblinear; no penalty with liblinear) are not generated: they are
    returned, described, as the second value. Grids of other models come back unchanged.
    """
    prefix = _logistic_prefix(pipeline)
    if prefix is None:
        return grid, []
    params = pipeline.get_params()
    current = {f"{prefix}{n}": params[f"{prefix}{n}"] for n in ("l1_ratio", "solver", "C")}
    if current[f"{prefix}l1_ratio"] is None:
        current[f"{prefix}l1_ratio"] = 0.0
    tables: list[dict[str, list[Any]]] = []
    skipped: list[str] = []
    for table in grid if isinstance(grid, list) else [grid]:
        more, left_out = _split_logistic(dict(table), prefix, current)
        tables += [t for t in more if t not in tables]
        skipped += left_out
    if not tables:
        raise SpecError(
            f"grid: every combination is one scikit-learn's LogisticRegression rejects "
            f"({'; '.join(skipped[:3])}); L1 needs solver liblinear or saga, elastic-net saga"
        )
    if not isinstance(grid, list) and len(tables) == 1:
        return tables[0], skipped
    return tables, skipped
