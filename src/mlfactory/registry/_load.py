"""Load a registered model safely: verified hash, skops with mlfactory's exact allow-list.

Every path that turns a model file into objects (serve, predict, explain, monitor, promote's trial
load, the ONNX compiler) goes through :func:`load_model_dir`. A version without a recorded
SHA-256 (registered with the MLflow UI or ``MlflowClient.create_model_version``) is refused unless
the caller passes ``allow_unverified=True``, which logs a warning. Pickle-based files
(cloudpickle/pickle flavours) run code when loaded; they are refused unless the caller passes
``allow_pickle=True`` explicitly, and then a warning is logged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlfactory.logs import get_logger
from mlfactory.registry._registry import ModelRef, VersionInfo, parse_model_ref, resolve_version
from mlfactory.schema import NUMBER_FORMATS, InputColumn
from mlfactory.serialization import (
    UnsafeModelError,
    UnverifiedModelError,
    load_skops,
    verify_sha256,
)
from mlfactory.settings import Settings
from mlfactory.tracking import open_tracking, tracking_uri

__all__ = [
    "InputColumn",
    "LoadedModel",
    "input_columns",
    "load_model",
    "load_model_dir",
    "verify_model",
]

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


def input_columns(meta: Any) -> list[InputColumn]:
    """The input columns of an MLmodel: its signature, and how training read text numbers."""
    schema = meta.get_input_schema()
    if schema is None:
        return []
    recorded = (getattr(meta, "metadata", None) or {}).get(NUMBER_FORMATS)
    formats = recorded if isinstance(recorded, dict) else {}
    return [
        InputColumn(
            spec.name,
            str(spec.type.name),
            bool(getattr(spec, "required", True)),
            number_format=str(formats[spec.name]) if spec.name in formats else None,
        )
        for spec in schema.inputs
    ]


def _model_file(model_dir: Path, flavor: dict[str, Any], where: str) -> Path:
    """The flavour's model file, which must be a plain file directly inside ``model_dir``."""
    name = str(flavor.get("pickled_model") or "model.skops")
    file = model_dir / name
    if Path(name).name != name or name in ("", ".", "..") or not file.is_file():
        raise UnsafeModelError(
            f"{where}: MLmodel names the model file {name!r}; expected a file directly inside "
            f"{model_dir}"
        )
    return file


def check_model_source(settings: Settings, artifact_uri: str) -> None:
    """Refuse a model location outside MLflow's stores (see :func:`download_model_dir`)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("runs", "models"):
        return
    if parsed.scheme in ("", "file") and not settings.artifacts_remote:
        path = Path(unquote(parsed.path)).resolve()
        root = settings.artifacts_dir.resolve()
        if path == root or root in path.parents:
            return
    if settings.artifacts_remote:  # s3://bucket/prefix: the same bucket, under the prefix
        root = settings.artifact_uri.rstrip("/") + "/"
        if artifact_uri.startswith(root) and ".." not in artifact_uri.split("/"):
            return
    raise UnsafeModelError(
        f"model location {artifact_uri!r} is outside MLflow's stores; expected runs:/, models:/ "
        f"or a path under the artifact root {settings.artifact_uri}"
    )


def download_model_dir(settings: Settings, artifact_uri: str, target: Path) -> Path:
    """Download a logged model's folder (MLmodel + model file) into ``target``.

    Only MLflow-managed locations are followed (``runs:/``, ``models:/``, or a path inside the
    artifact store): a version's source or a run's tag can be set by any MLflow user, and must
    not make mlfactory copy an arbitrary folder of this machine.
    """
    import mlflow

    check_model_source(settings, artifact_uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    target.mkdir(parents=True, exist_ok=True)
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=str(target), tracking_uri=tracking_uri(settings)
        )
    )


def load_model_dir(
    model_dir: Path,
    expected_sha256: str | None,
    *,
    where: str,
    allow_pickle: bool = False,
    allow_unverified: bool = False,
) -> tuple[Any, Any]:
    """Verify and load the scikit-learn model of a downloaded MLflow model folder.

    Returns ``(model, MLmodel metadata)``. The hash is checked first, then the exact types the
    skops file asks for (intersected with the list recorded in MLmodel at logging time), and only
    then is anything constructed.
    """
    from mlflow.models import Model

    try:
        meta = Model.load(str(model_dir))
    except Exception as exc:
        raise UnsafeModelError(f"{where}: no readable MLmodel in {model_dir}: {exc}") from None
    flavor = meta.flavors.get("sklearn") or {}
    if not expected_sha256:
        if not allow_unverified:
            raise UnverifiedModelError(
                f"{where} has no recorded SHA-256, so its file cannot be verified (it was "
                "registered outside mlfactory, e.g. with the MLflow UI or "
                "MlflowClient.create_model_version); register its run with "
                "`mlfactory promote RUN_ID --name NAME`, or pass --allow-unverified to load it "
                "anyway"
            )
        logger.warning("%s has no recorded SHA-256: loading it unverified", where)
    file = _model_file(model_dir, flavor, where)
    serialization = str(flavor.get("serialization_format", ""))
    if serialization == "skops":
        recorded = flavor.get("skops_trusted_types")
        recorded_types = [str(t) for t in recorded] if isinstance(recorded, list) else None
        model = load_skops(file, expected_sha256 or None, recorded_types=recorded_types)
    elif not allow_pickle:
        raise UnsafeModelError(
            f"{where}: model file {file} is {serialization or 'not skops'}-serialized: loading "
            "it can run arbitrary code; pass --allow-pickle only if you trust its origin"
        )
    else:
        import mlflow

        logger.warning("loading %s with %s (allow_pickle): this runs code", file, serialization)
        if expected_sha256:
            verify_sha256(file, expected_sha256)
        model = mlflow.sklearn.load_model(str(model_dir))
    return model, meta


def load_model(
    settings: Settings,
    reference: str | ModelRef,
    *,
    allow_pickle: bool = False,
    allow_unverified: bool = False,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Download, verify and load the version ``reference`` points at.

    The model's files are downloaded into ``cache_dir``, which the caller owns and removes (the
    service keeps them for its warm-up and ONNX graph). Without ``cache_dir`` they go to a
    temporary folder removed before this returns, also on error: the model is in memory by then,
    and the returned ``path`` no longer exists.
    """
    ref = parse_model_ref(reference) if isinstance(reference, str) else reference
    client = open_tracking(settings)
    info = resolve_version(client, ref)
    with contextlib.ExitStack() as cleanup:
        if cache_dir is None:
            cache_dir = Path(cleanup.enter_context(_temporary_folder("mlfactory-model-")))
        model_dir = download_model_dir(settings, info.source, Path(cache_dir))
        model, meta = load_model_dir(
            model_dir,
            info.model_sha256,
            where=f"model {ref} (version {info.version})",
            allow_pickle=allow_pickle,
            allow_unverified=allow_unverified,
        )
    classes = list(getattr(model, "classes_", []))
    logger.info("loaded %s (version %s) from %s", ref, info.version, model_dir)
    return LoadedModel(ref, info, model, input_columns(meta), model_dir, classes)


def verify_model(
    settings: Settings,
    reference: str | ModelRef,
    *,
    allow_pickle: bool = False,
    allow_unverified: bool = False,
) -> VersionInfo:
    """Load ``reference`` once in a throwaway folder: raises unless it is safe to serve."""
    loaded = load_model(
        settings, reference, allow_pickle=allow_pickle, allow_unverified=allow_unverified
    )
    return loaded.info


@contextlib.contextmanager
def _temporary_folder(prefix: str) -> Iterator[str]:
    """A fresh temporary folder, removed on exit whatever happened (read-only files too)."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fetch_verified_file(
    settings: Settings, artifact_uri: str, expected_sha256: str, target: Path, *, what: str
) -> Path:
    """Download one file of MLflow's stores into ``target`` and check its SHA-256 (a fleet's
    manifest); only MLflow-managed locations are followed (:func:`check_model_source`)."""
    import mlflow

    if not expected_sha256:
        raise UnverifiedModelError(f"{what} has no recorded SHA-256; refusing to read it")
    check_model_source(settings, artifact_uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    target.mkdir(parents=True, exist_ok=True)
    path = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=str(target), tracking_uri=tracking_uri(settings)
        )
    )
    verify_sha256(path, expected_sha256, what)
    return path


def load_model_file(
    settings: Settings,
    artifact_uri: str,
    expected_sha256: str,
    recorded_types: list[str] | None,
    target: Path,
    *,
    where: str,
) -> Any:
    """Download and load one skops model file (a fleet's segment): SHA-256 first, then the exact
    allow-list (intersected with ``recorded_types``), then construction, as every model here."""
    path = fetch_verified_file(settings, artifact_uri, expected_sha256, target, what=where)
    return load_skops(path, expected_sha256, recorded_types=recorded_types)
