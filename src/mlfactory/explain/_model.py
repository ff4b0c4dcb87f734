"""The model to explain: a fitted pipeline plus the run it came from.

``open_model`` accepts a run id (32 hex digits) or a registry reference ``NAME[@alias|/version]``.
Both paths load the skops file only after checking its SHA-256 against the value recorded when
the run logged it, and the types it needs against mlfactory's allow-list.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline

from mlfactory.exceptions import DataError, ModelNotFound
from mlfactory.logs import get_logger
from mlfactory.registry import LoadedModel, load_model
from mlfactory.registry._load import (
    _temporary_folder,
    download_model_dir,
    input_columns,
    load_model_dir,
)
from mlfactory.registry._registry import _model_run
from mlfactory.schema import InputColumn
from mlfactory.settings import Settings
from mlfactory.tracking import open_tracking

__all__ = ["ExplainModel", "is_run_id", "load_run_model", "open_model"]

logger = get_logger(__name__)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class ExplainModel:
    """A fitted ``Pipeline([("preproc", …), ("clf", …)])`` and where it came from."""

    pipeline: Pipeline
    run_id: str
    label: str  # "cancer@champion" or "run 1a2b…"
    input_columns: list[str]
    classes: list[Any] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # the run's parameters
    tags: dict[str, str] = field(default_factory=dict)  # the run's tags
    input_types: dict[str, str] = field(default_factory=dict)  # MLflow type by input column
    number_formats: dict[str, str] = field(default_factory=dict)  # how training read text numbers

    @property
    def is_classifier(self) -> bool:
        return bool(self.classes)

    @property
    def refit_metric(self) -> str | None:
        """The metric the run's search optimised (``refit`` parameter), if recorded."""
        return self.params.get("refit") or self.params.get("search.refit") or None

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, settings: Settings | None = None) -> ExplainModel:
        """Wrap a registry ``LoadedModel``; with settings, also read its run's params and tags."""
        params: dict[str, str] = {}
        tags: dict[str, str] = {}
        if settings is not None and loaded.info.run_id:
            run = open_tracking(settings).get_run(loaded.info.run_id)
            params, tags = dict(run.data.params), dict(run.data.tags)
        return cls(
            pipeline=_check_pipeline(loaded.model, str(loaded.ref)),
            run_id=loaded.info.run_id,
            label=f"{loaded.ref} (version {loaded.info.version})",
            input_columns=loaded.feature_names or _fitted_columns(loaded.model),
            classes=list(loaded.classes),
            params=params,
            tags=tags,
            input_types={column.name: column.type for column in loaded.inputs},
            number_formats=_number_formats(loaded.inputs),
        )


def is_run_id(text: str) -> bool:
    """True for an MLflow run id (32 lowercase hex digits)."""
    return bool(_RUN_ID.match(text.strip()))


def _check_pipeline(model: Any, where: str) -> Pipeline:
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        raise DataError(
            f"model {where} is a {type(model).__name__}; expected an mlfactory pipeline "
            "Pipeline([('preproc', ColumnTransformer), ('clf', estimator)])"
        )
    return model


def _fitted_columns(model: Any) -> list[str]:
    return [str(c) for c in getattr(model, "feature_names_in_", [])]


def load_run_model(settings: Settings, run_id: str, cache_dir: Path | None = None) -> ExplainModel:
    """Download, verify (SHA-256 + type allow-list) and load the model logged by run ``run_id``.

    A matrix parent run resolves to its best cell, as ``mlfactory promote`` does. The files go to
    ``cache_dir`` (the caller's) or to a temporary folder removed before this returns, also on
    error.
    """
    client = open_tracking(settings)
    run = _model_run(client, run_id.strip())
    tags = dict(run.data.tags)
    with contextlib.ExitStack() as cleanup:
        if cache_dir is None:
            cache_dir = Path(cleanup.enter_context(_temporary_folder("mlfactory-explain-")))
        model_dir = download_model_dir(settings, tags["mlfactory.model_uri"], Path(cache_dir))
        model, meta = load_model_dir(
            model_dir, tags["mlfactory.model_sha256"], where=f"model of run {run.info.run_id}"
        )
    inputs = input_columns(meta)
    columns = [column.name for column in inputs]
    logger.info("loaded the model of run %s from %s", run.info.run_id, model_dir)
    return ExplainModel(
        pipeline=_check_pipeline(model, f"of run {run.info.run_id}"),
        run_id=run.info.run_id,
        label=f"run {run.info.run_id}",
        input_columns=columns or _fitted_columns(model),
        classes=list(getattr(model, "classes_", [])),
        params=dict(run.data.params),
        tags=tags,
        input_types={column.name: column.type for column in inputs},
        number_formats=_number_formats(inputs),
    )


def _number_formats(inputs: list[InputColumn]) -> dict[str, str]:
    return {column.name: column.number_format for column in inputs if column.number_format}


def open_model(
    settings: Settings, reference: str, *, allow_unverified: bool = False
) -> ExplainModel:
    """The model behind a run id or a registry reference ``NAME[@alias|/version]``.

    ``allow_unverified`` loads a registered version that has no recorded SHA-256 (warned).
    """
    text = reference.strip()
    if not text:
        raise ModelNotFound("empty model reference; expected a RUN_ID or NAME[@alias]")
    if is_run_id(text):
        return load_run_model(settings, text)
    loaded = load_model(settings, text, allow_unverified=allow_unverified)
    return ExplainModel.from_loaded(loaded, settings)
