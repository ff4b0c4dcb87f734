"""The rows an explanation is computed on: held-out test set, a file, or a named dataset.

Default: the run's own held-out test set, rebuilt by re-resolving the spec recorded with the run
(``spec/resolved_spec.json``: same dataset, seed and split). If that dataset cannot be loaded any
more (a user file that moved, a database that is gone), the ``reference_sample.parquet`` the run
logged is used instead; those are *training* rows, and the report says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from mlfactory.datasets._io import read_csv_checked
from mlfactory.exceptions import DataError, MlfactoryError
from mlfactory.explain._model import ExplainModel
from mlfactory.logs import get_logger
from mlfactory.settings import Settings
from mlfactory.tracking import open_tracking

__all__ = ["ExplainData", "load_explain_data", "prepare_frame", "sample_rows"]

logger = get_logger(__name__)
_SPEC_ARTIFACT = "spec/resolved_spec.json"
_REFERENCE_ARTIFACT = "reference_sample.parquet"


@dataclass
class ExplainData:
    """Model inputs ``X`` (columns in the model's order), labels ``y`` and where they came from."""

    X: pd.DataFrame
    y: pd.Series
    source: str
    note: str = ""


def _download(settings: Settings, run_id: str, path: str) -> bytes | None:
    """A run's artifact's bytes, or ``None`` when the run has no such artifact (downloaded into
    a temporary folder removed before this returns)."""
    client = open_tracking(settings)
    with tempfile.TemporaryDirectory(prefix="mlfactory-explain-") as folder:
        try:
            local = Path(client.download_artifacts(run_id, path, folder))
            return local.read_bytes() if local.is_file() else None
        except (MlflowException, OSError):
            return None


def _spec_runs(model: ExplainModel) -> list[str]:
    """Runs that may hold the spec: the model's run, then its matrix parent."""
    runs = [model.run_id]
    parent = model.tags.get("mlflow.parentRunId")
    if parent:
        runs.append(parent)
    return runs


def _reference_sample(settings: Settings, model: ExplainModel) -> pd.DataFrame:
    content = _download(settings, model.run_id, _REFERENCE_ARTIFACT)
    if content is None:
        raise DataError(
            f"run {model.run_id} has no {_REFERENCE_ARTIFACT} artifact; pass --data FILE|DATASET"
        )
    return pd.read_parquet(io.BytesIO(content))


def target_name(settings: Settings, model: ExplainModel) -> str:
    """The target column of the run's data: the reference sample's one non-input column."""
    sample = _reference_sample(settings, model)
    extra = [c for c in sample.columns if c not in model.input_columns]
    if len(extra) != 1:
        raise DataError(
            f"cannot tell the target column of run {model.run_id} from {_REFERENCE_ARTIFACT} "
            f"(non-input columns: {extra})"
        )
    return str(extra[0])


def prepare_frame(
    frame: pd.DataFrame, model: ExplainModel, target: str | None, where: str
) -> tuple[pd.DataFrame, pd.Series]:
    """Model input columns (in the model's order) and the target; ``DataError`` if any lack."""
    missing = [c for c in model.input_columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where} lacks column(s) the model needs: {', '.join(missing)}; "
            f"expected: {', '.join(model.input_columns)}"
        )
    if target is None or target not in frame.columns:
        raise DataError(
            f"{where} has no target column {target!r}; permutation importance needs labels "
            f"(found: {', '.join(map(str, frame.columns))})"
        )
    X = frame[model.input_columns]
    if model.input_types:  # text numbers and booleans read as training read them
        from mlfactory._conform import conform_inputs
        from mlfactory.schema import InputColumn

        formats = model.number_formats
        inputs = [
            InputColumn(name, kind, number_format=formats.get(name))
            for name, kind in model.input_types.items()
        ]
        X = conform_inputs(X, inputs, where)
    if len(X) == 0:
        raise DataError(f"{where} has no rows")
    from mlfactory.datasets._user import labelled_rows

    y = frame[target]
    labelled = labelled_rows(y, target, where)  # as training does
    return (X, y) if labelled.all() else (X[labelled], y[labelled])


def _heldout(settings: Settings, model: ExplainModel) -> ExplainData | None:
    """The run's held-out test set, rebuilt from its recorded spec (``None`` when impossible)."""
    from mlfactory.spec import resolve_spec, spec_from_dict

    for run_id in _spec_runs(model):
        content = _download(settings, run_id, _SPEC_ARTIFACT)
        if content is None:
            continue
        resolved: dict[str, Any] = json.loads(content)
        raw = dict(resolved["spec"])
        raw["search"] = {"kind": "none", "refit": raw.get("search", {}).get("refit")}
        try:
            spec = spec_from_dict(raw, validate=False)
            again = resolve_spec(spec, settings)
        except (MlfactoryError, OSError, KeyError, ValueError) as exc:
            logger.warning("cannot rebuild the test set of run %s: %s", model.run_id, exc)
            return None
        record = again.split.to_dict()
        digest = hashlib.sha256(
            f"{record['train_sha256']}:{record['test_sha256']}".encode()
        ).hexdigest()
        recorded = model.tags.get("mlfactory.split_sha256", "")
        note = ""
        if recorded and recorded != digest:
            note = "the dataset changed since training: the rebuilt split differs from the run's"
            logger.warning("run %s: %s", model.run_id, note)
        X, y = prepare_frame(
            again.X_test.assign(**{"__target__": again.y_test}),
            model,
            "__target__",
            f"held-out test set of {spec.name!r}",
        )
        source = f"held-out test set of spec {spec.name!r} (dataset {again.dataset.name})"
        return ExplainData(X, y, source, note)
    return None


def _read_table(path: Path, model: ExplainModel) -> pd.DataFrame:
    from mlfactory._conform import reads_as_plain_numbers
    from mlfactory._tables import read_table_file

    if path.suffix.lower() == ".txt":  # CSV text under another name
        return read_csv_checked(path)
    formats = model.number_formats  # "1.234" is 1234 in a decimal-comma column: read as text
    text = [name for name, recorded in formats.items() if not reads_as_plain_numbers(recorded)]
    return read_table_file(path, "data file", text_columns=text)


def load_explain_data(settings: Settings, model: ExplainModel, data: str | None) -> ExplainData:
    """Rows to explain: ``data`` is a .csv/.parquet file or a registered dataset name.

    ``None`` means the run's held-out test set (or its reference sample if that cannot be
    rebuilt).
    """
    if data is None:
        found = _heldout(settings, model)
        if found is not None:
            return found
        sample = _reference_sample(settings, model)
        target = target_name(settings, model)
        X, y = prepare_frame(sample, model, target, f"{_REFERENCE_ARTIFACT} of {model.run_id}")
        return ExplainData(
            X,
            y,
            f"reference sample of run {model.run_id} (training rows)",
            "the held-out test set could not be rebuilt; training rows are used",
        )
    path = Path(data)
    if path.suffix.lower() in (".csv", ".parquet", ".txt") or path.exists():
        frame = _read_table(path, model)
        X, y = prepare_frame(frame, model, target_name(settings, model), f"data file {path}")
        return ExplainData(X, y, f"file {path}")
    from mlfactory.datasets import load_dataset

    dataset = load_dataset(data, settings)
    frame = dataset.X.assign(**{"__target__": dataset.y})
    X, y = prepare_frame(frame, model, "__target__", f"dataset {data!r}")
    return ExplainData(X, y, f"dataset {data} (all rows)")


def sample_rows(
    X: pd.DataFrame, y: pd.Series, max_rows: int | None, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series]:
    """At most ``max_rows`` rows drawn without replacement with ``seed`` (order kept)."""
    if max_rows is None or len(X) <= max_rows:
        return X, y
    if max_rows < 1:
        raise DataError(f"max_rows must be at least 1, got {max_rows}")
    positions = np.sort(np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False))
    return X.iloc[positions], y.iloc[positions]
