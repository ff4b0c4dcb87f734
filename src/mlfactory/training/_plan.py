"""Turn a resolved spec into the runner's plan."""

from __future__ import annotations

import hashlib

from mlfactory.spec._resolve import ResolvedCell, ResolvedSpec
from mlfactory.training._runner import CellPlan, ExperimentPlan
from mlfactory.training._search import SearchConfig

__all__ = ["plan_from_spec"]


def _search_config(resolved: ResolvedSpec, cell: ResolvedCell) -> SearchConfig:
    search = resolved.spec.search
    common = dict(
        kind=search.kind,
        scoring=tuple(resolved.scoring),
        refit=resolved.refit,
        n_iter=search.n_iter,
        seed=resolved.spec.seed,
        timeout_s=search.timeout,
    )
    if search.kind == "grid":
        return SearchConfig(param_grid=cell.param_grid, **common)
    if search.kind == "random":
        return SearchConfig(param_grid=cell.random_distributions(), **common)
    if search.kind == "optuna":
        return SearchConfig(distributions=cell.optuna_distributions(), **common)
    return SearchConfig(**common)


def plan_from_spec(resolved: ResolvedSpec) -> ExperimentPlan:
    """The runner's plan for every (recipe, model) cell of a resolved spec."""
    record = resolved.split.to_dict()
    record["sha256"] = hashlib.sha256(
        f"{record['train_sha256']}:{record['test_sha256']}".encode()
    ).hexdigest()
    return ExperimentPlan(
        name=resolved.spec.name,
        seed=resolved.spec.seed,
        dataset=resolved.dataset,
        train_index=resolved.train_idx,
        test_index=resolved.test_idx,
        cv=resolved.cv,
        cells=[
            CellPlan(cell.label, cell.pipeline, _search_config(resolved, cell))
            for cell in resolved.cells
        ],
        resolved=resolved.to_dict(),
        split_record=record,
        spec_path=resolved.spec.source,
    )
