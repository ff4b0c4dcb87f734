"""Model development: cross-validation, hyperparameter search and tracked experiment runs."""

from mlfactory.training._api import train
from mlfactory.training._plan import plan_from_spec
from mlfactory.training._runner import (
    CellPlan,
    CellResult,
    ExperimentPlan,
    ExperimentResult,
    run_experiment,
)
from mlfactory.training._search import (
    SearchConfig,
    SearchOutcome,
    in_process,
    parallel_context,
    run_search,
    score_on,
)

__all__ = [
    "CellPlan",
    "CellResult",
    "ExperimentPlan",
    "ExperimentResult",
    "SearchConfig",
    "SearchOutcome",
    "in_process",
    "parallel_context",
    "plan_from_spec",
    "run_experiment",
    "run_search",
    "score_on",
    "train",
]
