"""Model development: cross-validation, hyperparameter search and tracked experiment runs."""

from mlfactory.training._search import (
    SearchConfig,
    SearchOutcome,
    parallel_context,
    run_search,
    score_on,
)

__all__ = ["SearchConfig", "SearchOutcome", "parallel_context", "run_search", "score_on"]
