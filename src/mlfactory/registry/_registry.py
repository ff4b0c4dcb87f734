"""Model registry on MLflow: promote runs to versions, move aliases, list and describe models."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlfactory.exceptions import ModelNotFound
from mlfactory.logs import get_logger
from mlfactory.settings import Settings
from mlfactory.tracking import TrackingStoreEmpty, open_tracking, reap_stale_runs

if TYPE_CHECKING:  # MLflow loads with the first client: an empty store answers without it
    from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_ALIAS",
    "ModelRef",
    "VersionInfo",
    "describe_model",
    "list_models",
    "parse_model_ref",
    "promote",
    "resolve_version",
]

logger = get_logger(__name__)
DEFAULT_ALIAS = "champion"
_REF = re.compile(r"^(?P<name>[\w.\-]+)(?:@(?P<alias>[\w\-]+)|/(?P<version>\d+))?$")
_VERSION_TAG_KEYS = ("spec", "dataset", "dataset_sha256", "dataset_shape", "git_commit", "cell")


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME@alias`` or ``NAME/version``; a bare name means the champion."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias or DEFAULT_ALIAS}"


@dataclass
class VersionInfo:
    name: str
    version: str
    run_id: str
    source: str
    aliases: list[str]
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    created: int = 0

    @property
    def model_sha256(self) -> str | None:
        return self.tags.get("model_sha256")


def _as_metric(value: str) -> float | None:
    """A ``metric.*`` tag's value as a finite-or-infinite float, or None when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def parse_model_ref(text: str) -> ModelRef:
    match = _REF.match(text.strip())
    if not match:
        raise ModelNotFound(
            f"model reference {text!r} is malformed; expected NAME, NAME@alias or NAME/version"
        )
    return ModelRef(match["name"], match["alias"], match["version"])


def _version_info(client: MlflowClient, version: Any) -> VersionInfo:
    tags = dict(version.tags)
    metrics: dict[str, float] = {}
    for key, value in list(tags.items()):
        if key.startswith("metric."):
            number = _as_metric(value)
            if number is None:
                continue  # not a number (any MLflow user can set tags): kept as text in tags
            metrics[key.removeprefix("metric.")] = number
            del tags[key]
    return VersionInfo(
        name=version.name,
        version=str(version.version),
        run_id=version.run_id or "",
        source=version.source,
        aliases=list(getattr(version, "aliases", []) or []),
        tags=tags,
        metrics=metrics,
        created=int(version.creation_timestamp or 0),
    )


def _model_run(client: MlflowClient, run_id: str) -> Any:
    """The run holding the model: the run itself, or a matrix parent's best cell."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ModelNotFound(f"run {run_id!r} not found in the tracking store") from None
    best = run.data.tags.get("mlfactory.best_run_id")
    if best and "mlfactory.model_sha256" not in run.data.tags:
        run = client.get_run(best)
    if "mlfactory.model_sha256" not in run.data.tags:
        raise ModelNotFound(
            f"run {run_id!r} has no model logged by mlfactory train (no mlfactory.model_sha256 tag)"
        )
    return run


def best_run(client: MlflowClient, experiment: str, metric: str) -> Any:
    """The run with a model and the highest ``metric`` (scikit-learn scores: higher is better)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ModelNotFound(f"experiment {experiment!r} not found; known: {', '.join(names)}")
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=[f"metrics.`{metric}` DESC"],
        max_results=5000,
    )
    with_model = [
        r for r in runs if "mlfactory.model_sha256" in r.data.tags and metric in r.data.metrics
    ]
    if not with_model:
        available = sorted({m for r in runs for m in r.data.metrics if m.startswith("test_")})
        raise ModelNotFound(
            f"no finished run with a model and metric {metric!r} in experiment {experiment!r}; "
            f"metrics there: {', '.join(available) or '(none)'}"
        )
    return max(with_model, key=lambda r: r.data.metrics[metric])


def promote(
    settings: Settings,
    name: str,
    *,
    run_id: str | None = None,
    best_of: str | None = None,
    metric: str = "test_roc_auc",
    alias: str = DEFAULT_ALIAS,
    compile_onnx: bool = True,
) -> VersionInfo:
    """Register a run's model as a new version of ``name`` and point ``alias`` at it.

    With ``compile_onnx`` the pipeline is also converted to ONNX and verified on the run's
    reference sample; the verdict is recorded as version tags (``onnx_status`` = ``ok`` or
    ``fallback: reason``, ``onnx_max_abs_diff``). A pipeline that does not convert still promotes.
    """
    from mlflow.exceptions import MlflowException

    if (run_id is None) == (best_of is None):
        raise ModelNotFound("give either a run id or --best EXPERIMENT, not both or neither")
    client = open_tracking(settings)
    if run_id and _is_fleet_run(client, run_id):  # the fleet package registers fleets
        raise ModelNotFound(
            f"run {run_id!r} trained a fleet (one model per segment): register it with "
            "`mlfactory promote RUN --name NAME` or mlfactory.fleet.promote_fleet"
        )
    held = registered_kind(client, name)
    if held is not None and held[0] == "fleet":  # one name holds one kind of model
        raise ModelNotFound(
            f"model {name!r} holds fleets (version {held[1]} is a fleet): a single model is not "
            "registered under it; promote to another --name"
        )
    reap_stale_runs(client, settings.stale_run_timeout, by="mlfactory promote")
    run = _model_run(client, run_id) if run_id else best_run(client, best_of, metric)
    run_tags = run.data.tags
    _trial_load(settings, run)  # hash and allow-list checked before anything is registered
    tags = {key: run_tags.get(f"mlfactory.{key}", "") for key in _VERSION_TAG_KEYS}
    tags["model_sha256"] = run_tags["mlfactory.model_sha256"]
    tags.update(
        {f"metric.{k}": repr(v) for k, v in run.data.metrics.items() if k.startswith("test_")}
    )
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="registered by mlfactory promote")
    source = run_tags["mlfactory.model_uri"]
    version = client.create_model_version(
        name,
        source,
        run_id=run.info.run_id,
        tags=tags,
        model_id=run_tags.get("mlfactory.model_id") or None,
        await_creation_for=0,
    )
    try:
        if compile_onnx:
            from mlfactory.registry._compile import compile_version  # ONNX, loaded on use

            info = _version_info(client, client.get_model_version(name, version.version))
            for key, value in compile_version(settings, client, info).items():
                client.set_model_version_tag(name, version.version, key, value)
        # the alias moves last: a server polling it never sees a version without its tags
        client.set_registered_model_alias(name, alias, version.version)
    except BaseException:
        _discard_version(client, name, version.version)
        raise
    logger.info(
        "registered %s version %s (%s) from run %s", name, version.version, alias, run.info.run_id
    )
    return _version_info(client, client.get_model_version(name, version.version))


def registered_kind(client: MlflowClient, name: str) -> tuple[str, str] | None:
    """``("fleet" | "single", version)`` by the newest version of ``name``; None without one."""
    from mlflow.exceptions import MlflowException

    try:
        newest = client.search_model_versions(
            f"name = '{name}'", max_results=1, order_by=["version_number DESC"]
        )
    except MlflowException:
        return None
    if not newest:
        return None
    kind = "fleet" if (newest[0].tags or {}).get("fleet") == "true" else "single"
    return kind, str(newest[0].version)


def _is_fleet_run(client: MlflowClient, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).data.tags.get("mlfactory.fleet") == "true"
    except MlflowException:
        return False  # _model_run says the run is not there


def _trial_load(settings: Settings, run: Any) -> None:
    """Download the run's model, check its SHA-256 and exact types, and load it once."""
    import shutil
    import tempfile
    from pathlib import Path

    from mlfactory.registry._load import download_model_dir, load_model_dir

    work = Path(tempfile.mkdtemp(prefix="mlfactory-promote-"))
    try:
        model_dir = download_model_dir(settings, run.data.tags["mlfactory.model_uri"], work)
        load_model_dir(
            model_dir,
            run.data.tags["mlfactory.model_sha256"],
            where=f"model of run {run.info.run_id}",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _discard_version(client: MlflowClient, name: str, version: str) -> None:
    """Remove a version whose promotion did not finish, so no half-promoted version stays."""
    from mlflow.exceptions import MlflowException

    try:
        client.delete_model_version(name, version)
    except MlflowException as exc:  # pragma: no cover - the store went away mid-promotion
        logger.warning("could not remove unfinished version %s/%s: %s", name, version, exc)


def _registered_model(client: MlflowClient, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise ModelNotFound(
            f"registered model {name!r} not found; known: {', '.join(known) or '(none)'}"
        ) from None


def resolve_version(client: MlflowClient, ref: ModelRef) -> VersionInfo:
    """The version a reference points at; a clear error when model, alias or version is absent."""
    from mlflow.exceptions import MlflowException

    _registered_model(client, ref.name)
    try:
        if ref.version:
            version = client.get_model_version(ref.name, ref.version)
        else:
            version = client.get_model_version_by_alias(ref.name, ref.alias or DEFAULT_ALIAS)
    except MlflowException:
        raise ModelNotFound(f"model {ref} not found (no such version or alias)") from None
    return _version_info(client, version)


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Every registered model with its latest version and aliases."""
    try:
        client = open_tracking(settings, read_only=True)  # a reader: never creates or migrates
    except TrackingStoreEmpty:
        return []
    rows = []
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        aliases = dict(getattr(model, "aliases", {}) or {})
        rows.append(
            {
                "name": model.name,
                "versions": len(versions),
                "latest": max((int(v.version) for v in versions), default=0),
                "aliases": ", ".join(f"{a}->v{v}" for a, v in sorted(aliases.items())),
            }
        )
    return rows


def describe_model(settings: Settings, name: str) -> list[VersionInfo]:
    """Every version of ``name``, newest first, with aliases, tags and test metrics."""
    try:
        client = open_tracking(settings, read_only=True)  # a reader: never creates or migrates
    except TrackingStoreEmpty as exc:
        raise ModelNotFound(f"registered model {name!r} not found: {exc}") from None
    model = _registered_model(client, name)
    aliases_by_version: dict[str, list[str]] = {}
    for alias, version in (getattr(model, "aliases", {}) or {}).items():
        aliases_by_version.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'")
    infos = []
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        info = _version_info(client, version)
        info.aliases = sorted(aliases_by_version.get(info.version, []))
        infos.append(info)
    return infos
