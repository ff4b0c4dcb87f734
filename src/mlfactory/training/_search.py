"""Cross-validation and hyperparameter search: pure compute, no tracking.

Every kind of search returns the same :class:`SearchOutcome`: one row per candidate with the mean
and std of every metric, the fold-level scores, the failed candidates with their error, and the best
pipeline refitted on the whole training set.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import FitFailedWarning, UndefinedMetricWarning
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    cross_validate,
)

from mlfactory._worker import InPlaceTask
from mlfactory.exceptions import SpecError
from mlfactory.logs import get_logger
from mlfactory.spec._metrics import scorers_for

__all__ = [
    "CV_COLUMNS",
    "SearchConfig",
    "SearchOutcome",
    "cv_metric_name",
    "cv_metrics",
    "in_process",
    "parallel_context",
    "run_search",
    "score_on",
]

logger = get_logger(__name__)
SearchKind = Literal["none", "grid", "random", "optuna"]


@dataclass(frozen=True)
class SearchConfig:
    """What to search: ``param_grid`` for grid/random, ``distributions`` for optuna."""

    kind: SearchKind = "none"
    scoring: tuple[str, ...] = ("accuracy",)
    refit: str | None = None
    param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]] | None = None
    distributions: Mapping[str, Any] | None = None  # optuna distributions by parameter
    n_iter: int = 20
    seed: int = 0
    timeout_s: float | None = None  # optuna: stop asking for candidates after this long
    train_scores: bool = True  # grid/random: also score the training folds (False: NaN, faster)

    @property
    def refit_metric(self) -> str:
        return self.refit or self.scoring[0]


@dataclass
class SearchOutcome:
    # candidate, params, status, error, mean_/std_ test/train per metric, rank per metric
    candidates: pd.DataFrame
    folds: pd.DataFrame  # candidate, fold, metric, train_score, test_score
    best_index: int
    best_params: dict[str, Any]
    best_estimator: BaseEstimator
    refit_metric: str
    elapsed_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_row(self) -> pd.Series:
        """The best candidate's row of ``candidates``."""
        return self.candidates.loc[self.candidates["candidate"] == self.best_index].iloc[0]

    @property
    def best_scores(self) -> dict[str, float]:
        row = self.best_row
        return {
            column.removeprefix("mean_test_"): float(row[column])
            for column in self.candidates.columns
            if column.startswith("mean_test_")
        }


#: Candidate table column prefix -> (prefix, suffix) of the metric logged on MLflow runs. One
#: scheme for candidate, cell and parent runs: ``cv_roc_auc_mean`` is the same number everywhere.
CV_COLUMNS: dict[str, tuple[str, str]] = {
    "mean_test_": ("cv_", "_mean"),
    "std_test_": ("cv_", "_std"),
    "mean_train_": ("cv_train_", "_mean"),
    "std_train_": ("cv_train_", "_std"),
}


def cv_metric_name(column: str) -> str | None:
    """The logged name of a candidate-table column, ``None`` for columns that are not metrics.

    ``mean_test_roc_auc`` -> ``cv_roc_auc_mean``, ``std_test_roc_auc`` -> ``cv_roc_auc_std``,
    ``mean_train_roc_auc`` -> ``cv_train_roc_auc_mean`` (and ``_std``), ``mean_fit_time`` ->
    ``cv_fit_seconds_mean``.
    """
    if column == "mean_fit_time":
        return "cv_fit_seconds_mean"
    for prefix, (start, end) in CV_COLUMNS.items():
        if column.startswith(prefix):
            return f"{start}{column.removeprefix(prefix)}{end}"
    return None


def cv_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The finite CV metrics of one candidate row, by their logged names."""
    metrics = {}
    for column, value in row.items():
        name = cv_metric_name(str(column))
        if name is not None and value is not None and np.isfinite(float(value)):
            metrics[name] = float(value)
    return metrics


_ON_CLUSTER: ContextVar[bool] = ContextVar("mlfactory_on_cluster", default=False)


def _cluster_backend(client: Any, scatter: Sequence[Any]) -> Any:
    """joblib's Dask backend, with each task's nested joblib work kept on its worker."""
    from joblib._dask import DaskDistributedBackend

    class ClusterBackend(DaskDistributedBackend):
        def submit(self, func: Any, callback: Any = None) -> Any:
            func.items = [(InPlaceTask(f), args, kw) for f, args, kw in func.items]
            return super().submit(func, callback)

    return ClusterBackend(client=client, scatter=list(scatter))


@contextmanager
def parallel_context(scheduler: str | None, scatter: Sequence[Any] = ()) -> Iterator[None]:
    """Run joblib work locally, or on the Dask cluster at ``scheduler`` with the data pre-scattered.

    Scattering the training data once (broadcast to every worker) keeps the cluster from shipping
    it again with every fit; nested joblib calls of a fit run on the fit's own worker. Work that
    needs no cluster (refits, test scores, recording) runs here: see :func:`in_process`.
    """
    if scheduler is None:
        yield
        return
    from dask.distributed import Client

    with Client(scheduler, set_as_default=False) as client:
        token = _ON_CLUSTER.set(True)
        try:
            with joblib.parallel_config(backend=_cluster_backend(client, scatter), n_jobs=-1):
                yield
        finally:
            _ON_CLUSTER.reset(token)


@contextmanager
def in_process() -> Iterator[None]:
    """Inside :func:`parallel_context`, run this block's joblib work in this process.

    A refit or a scoring pass on the cluster would send each of its nested joblib calls there,
    with the data, for milliseconds of work. Outside a cluster context this changes nothing.
    """
    if not _ON_CLUSTER.get():
        yield
        return
    with joblib.parallel_config(backend="loky", n_jobs=None):
        yield


def _multimetric(scoring: Sequence[str], y: Any = None) -> dict[str, Any]:
    return scorers_for(scoring, y)


def run_search(
    pipeline: BaseEstimator,
    X: pd.DataFrame,
    y: pd.Series,
    cv: Any,
    config: SearchConfig,
    *,
    n_jobs: int | None = None,
    groups: Any = None,
) -> SearchOutcome:
    """Evaluate candidates with cross-validation, pick the best by ``config.refit``, refit it."""
    if config.refit_metric not in config.scoring:
        raise SpecError(
            f"refit metric {config.refit_metric!r} is not among the scoring metrics "
            f"{list(config.scoring)}"
        )
    started = time.perf_counter()
    if config.kind == "none":
        candidates, folds = _cross_validate_one(pipeline, X, y, cv, config, n_jobs, groups)
    elif config.kind in ("grid", "random"):
        candidates, folds = _sklearn_search(pipeline, X, y, cv, config, n_jobs, groups)
    elif config.kind == "optuna":
        candidates, folds = _optuna_search(pipeline, X, y, cv, config, n_jobs, groups)
    else:
        raise SpecError(f"unknown search kind {config.kind!r}; expected none, grid, random, optuna")

    with in_process():
        candidates = _attach_errors(pipeline, X, y, cv, candidates, groups)
    refit_column = f"mean_test_{config.refit_metric}"
    valid = candidates[candidates["status"] == "ok"]
    if valid.empty:
        first_error = (
            candidates["error"].dropna().iloc[0] if candidates["error"].notna().any() else ""
        )
        raise SpecError(f"every candidate failed to fit; first error: {first_error}")
    # ties go to the first candidate, as in scikit-learn
    best_row = valid.sort_values([refit_column, "candidate"], ascending=[False, True]).iloc[0]
    best_index = int(best_row["candidate"])
    best_params = dict(best_row["params"])
    best_estimator = clone(pipeline).set_params(**best_params)
    with in_process(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        best_estimator.fit(X, y)
    return SearchOutcome(
        candidates=candidates,
        folds=folds,
        best_index=best_index,
        best_params=best_params,
        best_estimator=best_estimator,
        refit_metric=config.refit_metric,
        elapsed_s=time.perf_counter() - started,
    )


def score_on(
    estimator: BaseEstimator, X: pd.DataFrame, y: pd.Series, scoring: Sequence[str]
) -> dict[str, float]:
    """Every metric of ``scoring`` for a fitted estimator on held-out data.

    As in cross-validation, an undefined metric (precision of a model that predicts no positive)
    is scikit-learn's 0.0 without its warning.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UndefinedMetricWarning)
        scorers = scorers_for(scoring, y)
        return {name: float(scorer(estimator, X, y)) for name, scorer in scorers.items()}


# Search kinds ----------------------------------------------------------------------------------


def _cross_validate(estimator, X, y, cv, scoring, n_jobs, groups) -> dict[str, Any]:
    """``cross_validate`` with every metric and train scores; failed fits score NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FitFailedWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        return cross_validate(
            estimator,
            X,
            y,
            groups=groups,
            cv=cv,
            scoring=_multimetric(scoring, y),
            return_train_score=True,
            n_jobs=n_jobs,
            error_score=np.nan,
        )


def _cross_validate_one(pipeline, X, y, cv, config, n_jobs, groups):
    result = _cross_validate(pipeline, X, y, cv, config.scoring, n_jobs, groups)
    row: dict[str, Any] = {"candidate": 0, "params": {}}
    fold_rows = []
    for metric in config.scoring:
        test, train = result[f"test_{metric}"], result[f"train_{metric}"]
        row[f"mean_test_{metric}"], row[f"std_test_{metric}"] = np.mean(test), np.std(test)
        row[f"mean_train_{metric}"], row[f"std_train_{metric}"] = np.mean(train), np.std(train)
        for fold, (tr, te) in enumerate(zip(train, test, strict=True)):
            fold_rows.append(_fold_row(0, fold, metric, tr, te))
    row["mean_fit_time"] = float(np.mean(result["fit_time"]))
    row[f"rank_test_{config.refit_metric}"] = 1
    return pd.DataFrame([row]), pd.DataFrame(fold_rows)


def _sklearn_search(pipeline, X, y, cv, config, n_jobs, groups):
    if not config.param_grid:
        raise SpecError(f"search.kind = {config.kind!r} needs a param_grid")
    common = dict(
        scoring=_multimetric(config.scoring, y),
        refit=False,
        cv=cv,
        n_jobs=n_jobs,
        return_train_score=config.train_scores,
        error_score=np.nan,
    )
    if config.kind == "grid":
        search = GridSearchCV(pipeline, config.param_grid, **common)
    else:
        search = RandomizedSearchCV(
            pipeline,
            config.param_grid,
            n_iter=config.n_iter,
            random_state=config.seed,
            **common,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FitFailedWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        search.fit(X, y, groups=groups)
    return _from_cv_results(search.cv_results_, config.scoring, search.n_splits_)


def _from_cv_results(cv_results: Mapping[str, Any], scoring: Sequence[str], n_splits: int):
    n_candidates = len(cv_results["params"])
    rows, fold_rows = [], []
    for index in range(n_candidates):
        row: dict[str, Any] = {"candidate": index, "params": dict(cv_results["params"][index])}
        for metric in scoring:
            for stat in ("mean", "std"):
                for part in ("test", "train"):
                    key = f"{stat}_{part}_{metric}"
                    row[key] = _cv_value(cv_results, key, index)
            row[f"rank_test_{metric}"] = int(cv_results[f"rank_test_{metric}"][index])
            for fold in range(n_splits):
                fold_rows.append(
                    _fold_row(
                        index,
                        fold,
                        metric,
                        _cv_value(cv_results, f"split{fold}_train_{metric}", index),
                        cv_results[f"split{fold}_test_{metric}"][index],
                    )
                )
        row["mean_fit_time"] = float(cv_results["mean_fit_time"][index])
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(fold_rows)


def _cv_value(cv_results: Mapping[str, Any], key: str, index: int) -> float:
    """One number of ``cv_results``; NaN for training-fold scores not computed (train_scores)."""
    values = cv_results.get(key)
    return float("nan") if values is None else float(values[index])


def _optuna_search(pipeline, X, y, cv, config, n_jobs, groups):
    import optuna

    if not config.distributions:
        raise SpecError("search.kind = 'optuna' needs distributions")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=config.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    results: dict[str, list[Any]] = {"params": [], "mean_fit_time": []}
    n_splits = None

    started = time.perf_counter()
    for _ in range(config.n_iter):
        if config.timeout_s is not None and time.perf_counter() - started > config.timeout_s:
            logger.info("optuna search stopped by its %.0fs timeout", config.timeout_s)
            break
        trial = study.ask(dict(config.distributions))
        params = dict(trial.params)
        candidate = clone(pipeline).set_params(**params)
        scores = _cross_validate(candidate, X, y, cv, config.scoring, n_jobs, groups)
        n_splits = len(scores["fit_time"])
        results["params"].append(params)
        results["mean_fit_time"].append(float(np.mean(scores["fit_time"])))
        for metric in config.scoring:
            for part in ("test", "train"):
                values = np.asarray(scores[f"{part}_{metric}"], dtype=float)
                results.setdefault(f"mean_{part}_{metric}", []).append(values.mean())
                results.setdefault(f"std_{part}_{metric}", []).append(values.std())
                for fold, value in enumerate(values):
                    results.setdefault(f"split{fold}_{part}_{metric}", []).append(value)
        value = float(np.mean(scores[f"test_{config.refit_metric}"]))
        if np.isfinite(value):
            study.tell(trial, value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    for metric in config.scoring:
        means = np.asarray(results[f"mean_test_{metric}"], dtype=float)
        order = np.argsort(-np.nan_to_num(means, nan=-np.inf), kind="stable")
        ranks = np.empty(len(means), dtype=int)
        ranks[order] = np.arange(1, len(means) + 1)
        results[f"rank_test_{metric}"] = ranks
    return _from_cv_results(results, config.scoring, n_splits or 0)


# Failed candidates -------------------------------------------------------------------------------


def _fold_row(candidate: int, fold: int, metric: str, train: float, test: float) -> dict[str, Any]:
    return {
        "candidate": candidate,
        "fold": fold,
        "metric": metric,
        "train_score": float(train),
        "test_score": float(test),
    }


def _scoring_error(fitted: Any, X: pd.DataFrame, y: pd.Series, metrics: Sequence[str]) -> str:
    """Why a fit that succeeded scored NaN: the first metric that fails on the fold, by name."""
    for name, scorer in scorers_for(metrics, y).items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = scorer(fitted, X, y)
        except Exception as exc:
            reason = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
            return f"metric {name!r} cannot be computed: {reason}"
        if value != value:
            return f"metric {name!r} is NaN on a fold"
    return "fit failed on some folds (not reproduced on the first fold)"


def _attach_errors(pipeline, X, y, cv, candidates: pd.DataFrame, groups) -> pd.DataFrame:
    """Mark candidates whose folds failed, with the error of one failing fit (re-run once)."""
    test_columns = [c for c in candidates.columns if c.startswith("mean_test_")]
    failed = candidates[test_columns].isna().any(axis=1)
    candidates = candidates.assign(status=np.where(failed, "failed", "ok"), error=None)
    if not failed.any():
        return candidates
    train_index, test_index = next(iter(cv.split(X, y, groups)))
    X_fold, y_fold = X.iloc[train_index], y.iloc[train_index]
    metrics = [c.removeprefix("mean_test_") for c in test_columns]
    for position in np.flatnonzero(failed.to_numpy()):
        params = candidates.iloc[position]["params"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = clone(pipeline).set_params(**params).fit(X_fold, y_fold)
        except Exception as exc:
            error = "".join(traceback.format_exception_only(exc)).strip()
        else:
            error = _scoring_error(fitted, X.iloc[test_index], y.iloc[test_index], metrics)
        candidates.iloc[position, candidates.columns.get_loc("error")] = error
        logger.warning("candidate %s failed: %s", params, error)
    return candidates
