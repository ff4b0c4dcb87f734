"""Load a registered model safely: verified hash, skops with mlfactory's allow-list.

Pickle-based files (cloudpickle/pickle flavours) run code when loaded; they are refused unless the
caller passes ``allow_pickle=True`` explicitly, and then a warning is logged.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.models import Model

from mlfactory.logs import get_logger
from mlfactory.registry._registry import ModelRef, VersionInfo, parse_model_ref, resolve_version
from mlfactory.schema import InputColumn
from mlfactory.serialization import UnsafeModelError, file_sha256, load_skops
from mlfactory.settings import Settings
from mlfactory.tracking import open_tracking, tracking_uri

__all__ = ["InputColumn", "LoadedModel", "load_model"]

logger = get_logger(__name__)


@dataclass
class LoadedModel:
    ref: ModelRef
    info: VersionInfo
    model: Any
    inputs: list[InputColumn]
    path: Path
    classes: list[Any] = field(default_factory=list)

    @property
    def is_classifier(self) -> bool:
        return bool(self.classes)

    @property
    def feature_names(self) -> list[str]:
        return [column.name for column in self.inputs]


def _input_columns(meta: Model) -> list[InputColumn]:
    schema = meta.get_input_schema()
    if schema is None:
        return []
    return [
        InputColumn(spec.name, str(spec.type.name), bool(getattr(spec, "required", True)))
        for spec in schema.inputs
    ]


def load_model(
    settings: Settings,
    reference: str | ModelRef,
    *,
    allow_pickle: bool = False,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Download, verify and load the version ``reference`` points at."""
    ref = parse_model_ref(reference) if isinstance(reference, str) else reference
    client = open_tracking(settings)
    info = resolve_version(client, ref)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    target = Path(cache_dir or tempfile.mkdtemp(prefix="mlfactory-model-"))
    target.mkdir(parents=True, exist_ok=True)
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=info.source, dst_path=str(target), tracking_uri=tracking_uri(settings)
        )
    )
    meta = Model.load(str(model_dir))
    flavor = meta.flavors.get("sklearn", {})
    file = model_dir / flavor.get("pickled_model", "model.skops")
    serialization = flavor.get("serialization_format", "")
    if serialization == "skops":
        model = load_skops(file, expected_sha256=info.model_sha256)
    elif not allow_pickle:
        raise UnsafeModelError(
            f"model file {file} of {ref} is {serialization or 'not skops'}-serialized: loading it "
            "can run arbitrary code; pass --allow-pickle only if you trust its origin"
        )
    else:
        logger.warning("loading %s with %s (allow_pickle): this runs code", file, serialization)
        if info.model_sha256 and file_sha256(file) != info.model_sha256:
            raise UnsafeModelError(f"model file {file} does not match its recorded SHA-256")
        model = mlflow.sklearn.load_model(str(model_dir))
    classes = list(getattr(model, "classes_", []))
    logger.info("loaded %s (version %s) from %s", ref, info.version, file)
    return LoadedModel(ref, info, model, _input_columns(meta), model_dir, classes)
