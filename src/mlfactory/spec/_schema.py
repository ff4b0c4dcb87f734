"""The experiment spec: a pydantic model of the TOML file, and the pipelines it builds."""

from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from sklearn.pipeline import Pipeline

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.exceptions import SpecError
from mlfactory.models import MODELS, build_model
from mlfactory.preprocessing import build_recipe

if TYPE_CHECKING:
    from mlfactory.settings import Settings
    from mlfactory.spec._resolve import ResolvedSpec

__all__ = ["CVSpec", "ExperimentSpec", "SearchSpec", "SegmentsSpec"]

CVKind = Literal["auto", "stratified", "kfold", "walk_forward"]
SearchKind = Literal["none", "grid", "random", "optuna"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CVSpec(_Strict):
    """``[cv]``: how training rows are cross-validated and scored."""

    folds: int = Field(5, ge=2, description="Number of CV folds (walk-forward: number of splits).")
    kind: CVKind = Field(
        "auto",
        description="auto: stratified (classification) / shuffled k-fold (regression) / "
        "walk-forward (time-ordered data); or force stratified, kfold, walk_forward.",
    )
    scoring: list[str] | None = Field(
        None, description="scikit-learn scorer names; default per task.", min_length=1
    )
    purge: int | None = Field(
        None, ge=0, description="Walk-forward gap before each test block; default: the horizon."
    )
    embargo: int = Field(0, ge=0, description="Walk-forward gap after each test block.")
    shuffle: bool = Field(
        True,
        description="Shuffle rows (with the seed) before cutting stratified/k-fold folds; false: "
        "consecutive blocks of the training rows, as scikit-learn's KFold() / cv=5.",
    )


class SearchSpec(_Strict):
    """``[search]``: hyperparameter search over the pipeline's parameters."""

    kind: SearchKind = Field("grid", description="none | grid | random | optuna.")
    param_grid: str | dict[str, Any] | list[dict[str, Any]] | None = Field(
        None,
        description="JSON file (spec folder, then shipped grids) or inline table; "
        "default: each model's shipped grid.",
    )
    distributions: str | dict[str, Any] | None = Field(
        None,
        description="Declarative search space for optuna/random (file or inline table); "
        "default: each model's shipped space.",
    )
    refit: str | None = Field(None, description="Metric that picks the best; default: the first.")
    n_iter: int = Field(20, ge=1, description="Candidates tried by random and optuna search.")
    timeout: float | None = Field(None, gt=0, description="Optuna time budget in seconds.")


class SegmentsSpec(_Strict):
    """``[segments]``: a fleet, one model per segment (see docs/fleets.md)."""

    by: list[str] = Field(
        min_length=1, description='Column(s) whose values name a segment, e.g. ["sector"].'
    )
    min_rows: int = Field(
        200, ge=2, description="Segments with fewer rows get no model of their own (fallback)."
    )
    fallback: Literal["global", "none"] = Field(
        "global",
        description="global: a model trained on all rows scores small and unseen segments; "
        "none: they are refused.",
    )
    pack_rows: int = Field(
        20_000, ge=1, description="Rows per training task: small segments share one task."
    )

    @field_validator("by", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else value
        if isinstance(value, list) and len(set(map(str, value))) != len(value):
            raise ValueError("segment columns must be distinct")
        return value


class ExperimentSpec(_Strict):
    """One experiment (or a matrix of them): data, preprocessing, model, CV and search."""

    name: str = Field(min_length=1, description="Experiment name.")
    description: str = ""
    dataset: str | dict[str, Any] = Field(
        description="Registered dataset name, or an inline table {path=..., target=...}."
    )
    dataset_options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword options of a named dataset's loader."
    )
    task: Task | None = Field(None, description="Expected task; checked against the dataset.")
    preprocessing: str | list[str] = Field(
        "basic", description="Recipe name, or a list of recipes for a matrix."
    )
    model: str | list[str] = Field(description="Zoo model name, or a list for a matrix.")
    seed: int = 42
    test_size: float = Field(0.2, gt=0, lt=1)
    test_stratify: bool = Field(
        True,
        description="Stratify the hold-out split of a classification target; false: a plain "
        "train_test_split(random_state=seed), training rows in the order it returns them.",
    )
    cv: CVSpec = Field(default_factory=CVSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    segments: SegmentsSpec | None = Field(
        None, description="One model per segment (a fleet); absent: one model."
    )

    _source: Path | None = PrivateAttr(default=None)

    # Matrix --------------------------------------------------------------------------
    @property
    def source(self) -> Path | None:
        """The TOML file the spec was read from (relative grid paths start at its folder)."""
        return self._source

    @property
    def recipes(self) -> list[str]:
        return [self.preprocessing] if isinstance(self.preprocessing, str) else self.preprocessing

    @property
    def models(self) -> list[str]:
        return [self.model] if isinstance(self.model, str) else self.model

    def cells(self) -> list[tuple[str, str]]:
        """Every (recipe, model) pair of the matrix, recipes outermost."""
        return list(product(self.recipes, self.models))

    def resolve(
        self, settings: Settings | None = None, dataset: Dataset | None = None
    ) -> ResolvedSpec:
        """Load the data, split it and build everything the runner needs (a ``ResolvedSpec``)."""
        from mlfactory.spec._resolve import resolve_spec

        return resolve_spec(self, settings, dataset)

    @property
    def is_matrix(self) -> bool:
        return len(self.cells()) > 1

    # Pipelines -------------------------------------------------------------------------
    def build_pipeline(
        self,
        dataset: Dataset,
        cell: tuple[str, str] | None = None,
        X: pd.DataFrame | None = None,
    ) -> Pipeline:
        """``Pipeline([('preproc', recipe), ('clf', model)])`` for one cell (default: the only one).

        ``X`` is the frame the ``power`` recipe detects skewed columns on (pass training rows);
        the dataset's whole ``X`` when omitted.
        """
        if cell is None:
            if self.is_matrix:
                raise SpecError(
                    f"spec {self.name!r} is a matrix of {len(self.cells())} cells; pass one of "
                    f"spec.cells(): {self.cells()}"
                )
            cell = self.cells()[0]
        recipe, model = cell
        return make_pipeline(
            recipe, model, dataset.task, dataset.roles, dataset.X if X is None else X, self.seed
        )


def make_pipeline(
    recipe: str,
    model: str,
    task: Task,
    roles: ColumnRoles,
    X: pd.DataFrame | None,
    seed: int,
) -> Pipeline:
    """The two-step pipeline every experiment fits."""
    return Pipeline(
        [("preproc", build_recipe(recipe, roles, X)), ("clf", build_model(model, task, seed))]
    )


PROBE_ROLES = ColumnRoles(numeric=("n",), categorical=("c",), boolean=("b",), skewed=("s",))


def probe_pipeline(recipe: str, model: str, task: Task | None, seed: int = 0) -> Pipeline:
    """A pipeline with every role group present: its parameters are all a grid may name."""
    if task is None:
        task = MODELS[model].tasks[0]
    return make_pipeline(recipe, model, task, PROBE_ROLES, None, seed)
