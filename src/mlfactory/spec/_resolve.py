"""Resolving a spec: load the dataset, split it, and assemble what the runner needs."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from mlfactory.datasets._base import Dataset, Task
from mlfactory.exceptions import DegenerateDataError, SpecError
from mlfactory.logs import get_logger
from mlfactory.models import (
    ParamGrid,
    get_model_entry,
    to_optuna_distributions,
    to_scipy_distributions,
)
from mlfactory.settings import Settings, get_settings, mask_secrets
from mlfactory.spec._load import check_param_names, field_error, grid_for, space_for, validate_spec
from mlfactory.spec._metrics import (
    BINARY_ONLY_METRICS,
    DEFAULT_SCORING,
    MULTICLASS_DEFAULT_SCORING,
    check_metrics,
    scorers_for,
)
from mlfactory.spec._schema import ExperimentSpec, make_pipeline

if TYPE_CHECKING:
    from mlfactory.datasets.splits import SplitRecord

__all__ = ["ResolvedCell", "ResolvedSpec", "make_cv", "resolve_spec", "scoring_for"]

logger = get_logger(__name__)


@dataclass
class ResolvedCell:
    """One (recipe, model) cell: its unfitted pipeline and what to search."""

    recipe: str
    model: str
    pipeline: Pipeline
    param_grid: ParamGrid | None = None  # grid / random search (lists)
    space: dict[str, Any] | None = None  # declarative space (optuna / random)
    search_source: str = ""  # file or "inline" the grid/space came from
    skipped: list[str] = dataclasses.field(default_factory=list)  # grid pairs the solver rejects

    @property
    def label(self) -> str:
        return f"{self.recipe}+{self.model}"

    def optuna_distributions(self) -> dict[str, Any]:
        """Optuna distributions of the declarative space (``SpecError`` without one)."""
        if self.space is None:
            raise SpecError(f"cell {self.label} has no search space (search.distributions)")
        return to_optuna_distributions(self.space)

    def random_distributions(self) -> ParamGrid | dict[str, Any]:
        """What ``RandomizedSearchCV`` samples: the space as scipy distributions, else the grid."""
        if self.space is not None:
            return to_scipy_distributions(self.space)
        if self.param_grid is None:
            raise SpecError(f"cell {self.label} has neither a grid nor a search space")
        return self.param_grid

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "model": self.model,
            "pipeline": repr(self.pipeline),
            "param_grid": self.param_grid,
            "distributions": self.space,
            "search_source": self.search_source,
            "skipped_candidates": self.skipped,
        }


@dataclass
class ResolvedSpec:
    """Everything an experiment runner needs, decided and checked up front."""

    spec: ExperimentSpec
    dataset: Dataset
    task: Task
    train_idx: np.ndarray
    test_idx: np.ndarray
    split: SplitRecord
    cv: Any  # StratifiedKFold, KFold or WalkForwardSplit
    cells: list[ResolvedCell]
    scoring: list[str]
    refit: str

    def scorers(self) -> dict[str, Any]:
        """Scorer objects by metric name (``sklearn.metrics.get_scorer``; for text labels the
        binary metrics score the last class, see :func:`mlfactory.spec._metrics.scorer_for`)."""
        return scorers_for(self.scoring, self.dataset.y)

    @property
    def X_train(self) -> pd.DataFrame:
        return self.dataset.X.iloc[self.train_idx]

    @property
    def y_train(self) -> pd.Series:
        return self.dataset.y.iloc[self.train_idx]

    @property
    def X_test(self) -> pd.DataFrame:
        return self.dataset.X.iloc[self.test_idx]

    @property
    def y_test(self) -> pd.Series:
        return self.dataset.y.iloc[self.test_idx]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (for run parameters and an artifact).

        Every URL in it, in any field, has its password and secret query values masked: this
        is what gets recorded, never the credentials.
        """
        ds = self.dataset
        return mask_secrets(
            _jsonable(
                {
                    "name": self.spec.name,
                    "source": str(self.spec.source) if self.spec.source else None,
                    "spec": self.spec.model_dump(mode="json"),
                    "task": self.task.value,
                    "dataset": {
                        "name": ds.name,
                        "source": ds.source,
                        "rows": len(ds.X),
                        "features": len(ds.roles.all),
                        "roles": dataclasses.asdict(ds.roles),
                        "time_column": ds.time_column,
                        "horizon": ds.horizon,
                    },
                    "split": self.split,
                    "cv": {"splitter": repr(self.cv), "folds": self.spec.cv.folds},
                    "scoring": self.scoring,
                    "refit": self.refit,
                    "search": {
                        "kind": self.spec.search.kind,
                        "n_iter": self.spec.search.n_iter,
                        "timeout": self.spec.search.timeout,
                    },
                    "cells": [cell.to_dict() for cell in self.cells],
                }
            )
        )


def _jsonable(value: Any) -> Any:
    """Plain JSON types only: dataclasses, paths, numpy scalars, timestamps become text/numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def scoring_for(spec: ExperimentSpec, task: Task, y: pd.Series | None = None) -> list[str]:
    """The metrics to score: the spec's, or the task default (multiclass variants if >2 classes)."""
    multiclass = task == Task.CLASSIFICATION and y is not None and y.nunique(dropna=True) > 2
    if spec.cv.scoring is None:
        if multiclass:
            return list(MULTICLASS_DEFAULT_SCORING)
        return list(DEFAULT_SCORING[task])
    try:
        check_metrics(spec.cv.scoring, task)
    except SpecError as exc:
        raise field_error(spec, "cv.scoring", str(exc)) from None
    if multiclass:
        binary = [m for m in spec.cv.scoring if m in BINARY_ONLY_METRICS]
        if binary:
            raise field_error(
                spec,
                "cv.scoring",
                f"{binary} score two classes only and the target has {y.nunique()}; use e.g. "
                "f1_macro, precision_macro, recall_macro, roc_auc_ovr",
            )
    return list(spec.cv.scoring)


def make_cv(spec: ExperimentSpec, dataset: Dataset) -> Any:
    """The CV splitter for the training rows (see ``[cv] kind``).

    A ``WalkForwardSplit`` reads dates from the dataset's time column, so split a DataFrame that
    still holds it (``resolved.X_train``); the recipes drop it from the features.
    """
    kind, folds, seed = spec.cv.kind, spec.cv.folds, spec.seed
    if dataset.is_time_ordered:
        if kind in ("stratified", "kfold"):
            raise field_error(
                spec,
                "cv.kind",
                f"dataset {dataset.name!r} is time-ordered (by {dataset.time_column!r}) and is "
                f"never split at random; expected auto or walk_forward, got {kind!r}",
            )
        from mlfactory.datasets.splits import WalkForwardSplit

        purge = spec.cv.purge if spec.cv.purge is not None else dataset.horizon
        return WalkForwardSplit(
            n_splits=folds, purge=purge, embargo=spec.cv.embargo, dates=dataset.time_column
        )
    if kind == "walk_forward":
        raise field_error(
            spec,
            "cv.kind",
            f"dataset {dataset.name!r} has no time column; expected auto, stratified or kfold",
        )
    shuffled = {"shuffle": True, "random_state": seed} if spec.cv.shuffle else {}
    if dataset.task == Task.CLASSIFICATION and kind in ("auto", "stratified"):
        return StratifiedKFold(n_splits=folds, **shuffled)
    if kind == "stratified":
        raise field_error(
            spec, "cv.kind", "stratified folds need a classification target; expected auto or kfold"
        )
    return KFold(n_splits=folds, **shuffled)


def _compatible(grid: ParamGrid, pipeline: Pipeline, label: str) -> tuple[ParamGrid, list[str]]:
    """The grid without deprecated ``penalty`` and the combinations the solver rejects (logged)."""
    from mlfactory.models._grids import solver_compatible_grid

    grid, skipped = solver_compatible_grid(grid, pipeline)
    if skipped:
        logger.warning(
            "grid for %s: %d combination(s) scikit-learn cannot fit are not tried: %s",
            label,
            len(skipped),
            "; ".join(skipped),
        )
    return grid, skipped


def _cells(spec: ExperimentSpec, dataset: Dataset, X_train: pd.DataFrame) -> list[ResolvedCell]:
    cells = []
    kind = spec.search.kind
    for recipe, model in spec.cells():
        try:
            get_model_entry(model, dataset.task)
        except SpecError as exc:
            raise field_error(spec, "model", str(exc)) from None
        pipeline = make_pipeline(recipe, model, dataset.task, dataset.roles, X_train, spec.seed)
        cell = ResolvedCell(recipe, model, pipeline)
        label = f"cell ({recipe}, {model})"
        try:
            if kind == "grid" or (
                kind == "random"
                and spec.search.distributions is None
                and spec.search.param_grid is not None
            ):
                cell.param_grid, cell.search_source = grid_for(spec, model, dataset.task)
                cell.param_grid, cell.skipped = _compatible(cell.param_grid, pipeline, label)
                check_param_names(cell.param_grid, pipeline, f"grid for {label}")
            elif kind in ("random", "optuna"):
                cell.space, cell.search_source = space_for(spec, model, dataset.task)
                check_param_names(cell.space, pipeline, f"search space for {label}")
        except SpecError as exc:
            field_name = "search.param_grid" if cell.space is None else "search.distributions"
            raise field_error(spec, field_name, str(exc)) from None
        cells.append(cell)
    return cells


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _class_counts(y: pd.Series) -> str:
    counts = y.value_counts()
    return ", ".join(f"{_plain(label)!r}: {count}" for label, count in counts.head(10).items())


def check_trainable(dataset: Dataset, folds: int) -> None:
    """Refuse, before any fit, data that cannot train: one class, constant target, no features."""
    y, name = dataset.y.dropna(), dataset.name
    if len(y) == 0:
        raise DegenerateDataError(f"dataset {name!r} has no rows with a target value")
    if not dataset.roles.all:
        dropped = [
            f"{d['column']} ({d['role']})"
            for d in dataset.role_decisions
            if d["role"] not in ("target", "time", "groups")
        ]
        raise DegenerateDataError(
            f"dataset {name!r} has no usable feature columns"
            + (f"; not used: {', '.join(dropped)}" if dropped else "")
        )
    if dataset.task == Task.CLASSIFICATION:
        counts = y.value_counts()
        if len(counts) < 2:
            raise DegenerateDataError(
                f"target {y.name!r} of dataset {name!r} has one class "
                f"({_plain(counts.index[0])!r} in all {len(y)} rows); "
                "a classifier needs at least two"
            )
        smallest = int(counts.min())
        if smallest < 2 or len(y) < 2 * folds:
            raise DegenerateDataError(
                f"dataset {name!r} is too small to split and cross-validate with cv.folds={folds}: "
                f"{len(y)} rows, classes {_class_counts(y)}; each class needs at least "
                f"{folds} training rows and one test row"
            )
    else:
        if y.nunique() < 2:
            raise DegenerateDataError(
                f"regression target {y.name!r} of dataset {name!r} is constant "
                f"({_plain(y.iloc[0])!r} in all {len(y)} rows)"
            )
        if len(y) < 2 * folds + 1:
            raise DegenerateDataError(
                f"dataset {name!r} has {len(y)} rows, too few for a test split and "
                f"cv.folds={folds} (needs at least {2 * folds + 1})"
            )


def check_split(dataset: Dataset, train_idx: np.ndarray, test_idx: np.ndarray, folds: int) -> None:
    """Refuse a split whose test side has one class or whose training side cannot fill the folds."""
    y = dataset.y
    if dataset.task != Task.CLASSIFICATION:
        if len(train_idx) < folds:
            raise DegenerateDataError(
                f"the training split of {dataset.name!r} has {len(train_idx)} rows, fewer than "
                f"cv.folds={folds}"
            )
        return
    test, train = y.iloc[test_idx], y.iloc[train_idx]
    if test.nunique() < 2:
        raise DegenerateDataError(
            f"the test split of {dataset.name!r} has one class ({_class_counts(test)}); "
            "raise test_size or add rows of the other class"
        )
    counts = train.value_counts()
    if counts.min() < folds or len(counts) < y.nunique():
        raise DegenerateDataError(
            f"the training split of {dataset.name!r} has classes {_class_counts(train)}: each "
            f"class needs at least cv.folds={folds} rows; lower cv.folds or add rows"
        )


def resolve_spec(
    spec: ExperimentSpec, settings: Settings | None = None, dataset: Dataset | None = None
) -> ResolvedSpec:
    """Load the dataset (unless given), split it, and build CV, pipelines, grids and scorers."""
    validate_spec(spec)
    if dataset is None:
        from mlfactory.datasets import load_dataset

        options = dict(spec.dataset_options)
        if (
            isinstance(spec.dataset, Mapping)
            and spec.task is not None
            and "task" not in spec.dataset
        ):
            options.setdefault("task", spec.task.value)  # the spec's task decides a user table's
        dataset = load_dataset(spec.dataset, settings or get_settings(), **options)
    check_trainable(dataset, spec.cv.folds)
    if spec.segments is not None:  # a fleet: its segment columns must exist (names the field)
        from mlfactory.fleet._plan import check_segment_columns

        check_segment_columns(spec, dataset)
    if spec.task is not None and spec.task != dataset.task:
        raise field_error(
            spec, "task", f"dataset {dataset.name!r} is {dataset.task.value}, not {spec.task.value}"
        )
    from mlfactory.datasets.splits import train_test_split_for

    try:
        train_idx, test_idx, record = train_test_split_for(
            dataset, spec.test_size, spec.seed, stratify=spec.test_stratify
        )
    except ValueError as exc:  # scikit-learn's own check of a split that cannot be made
        raise DegenerateDataError(
            f"dataset {dataset.name!r} ({len(dataset.y)} rows) cannot be split with "
            f"test_size={spec.test_size}: {str(exc).strip().splitlines()[0]}"
        ) from None
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    check_split(dataset, train_idx, test_idx, spec.cv.folds)
    X_train = dataset.X.iloc[train_idx]
    scoring = scoring_for(spec, dataset.task, dataset.y.iloc[train_idx])
    refit = spec.search.refit or scoring[0]
    if refit not in scoring:
        raise field_error(
            spec, "search.refit", f"{refit!r} is not scored; expected one of {scoring}"
        )
    resolved = ResolvedSpec(
        spec=spec,
        dataset=dataset,
        task=dataset.task,
        train_idx=train_idx,
        test_idx=test_idx,
        split=record,
        cv=make_cv(spec, dataset),
        cells=_cells(spec, dataset, X_train),
        scoring=scoring,
        refit=refit,
    )
    logger.debug(
        "resolved spec %s: %d cells, %d train / %d test rows",
        spec.name,
        len(resolved.cells),
        len(train_idx),
        len(test_idx),
    )
    return resolved
