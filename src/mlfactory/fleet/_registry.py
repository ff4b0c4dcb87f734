"""A fleet in the registry: one registered model whose versions are bundle manifests.

A version's manifest maps every segment key to its model file (an artifact of the training run
that fitted it), the file's SHA-256, its metrics and the version in which it was first
registered. Promotion judges each segment with the promotion gate on that segment's held-out
rows: a segment whose challenger fails keeps its previous model, *referenced* (same file, same
hash), never copied. Every file is read through the trusted loader (hash, then exact allow-list).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.exceptions import DataError, ModelNotFound
from mlfactory.fleet._plan import FALLBACK_KEY
from mlfactory.fleet._train import ARTIFACT_DIR, MANIFEST_FORMAT
from mlfactory.logs import get_logger
from mlfactory.settings import Settings

__all__ = [
    "FleetPromotion",
    "best_fleet_run",
    "describe_fleet",
    "is_fleet_run",
    "is_fleet_version",
    "load_version_manifest",
    "promote_fleet",
]

logger = get_logger(__name__)
FLEET_TAG = "fleet"
MANIFEST_TAG = "fleet.manifest"
MANIFEST_SHA_TAG = "fleet.manifest_sha256"


@dataclass
class FleetPromotion:
    """What promotion did: the version (new, or the unchanged champion) and each segment's fate."""

    info: Any  # VersionInfo
    registered: bool  # False: no segment passed, the champion stays
    accepted: list[str]
    kept: list[str]
    decision_id: int | None
    reason: str


def is_fleet_version(info: Any) -> bool:
    return info.tags.get(FLEET_TAG) == "true"


def is_fleet_run(settings: Settings, run_id: str) -> bool:
    from mlfactory.tracking import open_tracking

    run = open_tracking(settings).get_run(run_id)
    return run.data.tags.get("mlfactory.fleet") == "true"


def refuse_single_name(client: Any, name: str) -> None:
    """A name that holds single models takes no fleet (one name, one kind of model)."""
    from mlfactory.registry._registry import registered_kind

    held = registered_kind(client, name)
    if held is not None and held[0] == "single":
        raise ModelNotFound(
            f"model {name!r} holds single models (version {held[1]} is not a fleet): a fleet is "
            "not registered under it; promote to another --name"
        )


def best_fleet_run(settings: Settings, experiment: str, metric: str, name: str) -> Any | None:
    """The finished fleet training of ``experiment`` with the highest ``metric`` (its fleet test
    score, every held-out row routed), or None when the experiment has no fleet training or
    ``name`` holds single models (``promote --best`` then looks for a single model)."""
    from mlfactory.registry._registry import registered_kind
    from mlfactory.tracking import open_tracking

    client = open_tracking(settings)
    found = client.get_experiment_by_name(experiment)
    held = registered_kind(client, name)
    if found is None or (held is not None and held[0] == "single"):
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="attributes.status = 'FINISHED' and tags.`mlfactory.fleet` = 'true'",
        max_results=5000,
    )
    if not runs:
        return None
    scored = [r for r in runs if math.isfinite(r.data.metrics.get(metric, math.nan))]
    if not scored:
        available = sorted({m for r in runs for m in r.data.metrics if m.startswith("test_")})
        raise ModelNotFound(
            f"no finished fleet training with metric {metric!r} in experiment {experiment!r}; "
            f"its fleet metrics: {', '.join(available) or '(none)'}"
        )
    return max(scored, key=lambda r: (r.data.metrics[metric], r.info.start_time or 0))


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path} is not a fleet manifest ({MANIFEST_FORMAT})")
    return data


def _run_manifest(settings: Settings, run: Any, work: Path) -> dict[str, Any]:
    from mlfactory.registry._load import fetch_verified_file

    sha = run.data.tags.get("mlfactory.fleet_manifest_sha256", "")
    path = fetch_verified_file(
        settings,
        f"runs:/{run.info.run_id}/{ARTIFACT_DIR}/manifest.json",
        sha,
        work,
        what=f"fleet manifest of run {run.info.run_id}",
    )
    return _read_json(path)


def load_version_manifest(settings: Settings, info: Any, work: Path) -> dict[str, Any]:
    """The verified manifest of a fleet version (its SHA-256 is a version tag)."""
    from mlfactory.registry._load import fetch_verified_file

    if not is_fleet_version(info):
        raise ModelNotFound(f"model {info.name} version {info.version} is not a fleet")
    path = fetch_verified_file(
        settings,
        f"runs:/{info.run_id}/{info.tags.get(MANIFEST_TAG, '')}",
        info.tags.get(MANIFEST_SHA_TAG, ""),
        work,
        what=f"fleet manifest of {info.name} version {info.version}",
    )
    return _read_json(path)


class ModelFiles:
    """Loads manifest entries through the trusted loader, resolving each run's store once."""

    def __init__(self, settings: Settings, work: Path) -> None:
        from mlfactory.tracking import open_tracking

        self.settings, self.work = settings, work
        self.client = open_tracking(settings)
        self._roots: dict[str, str] = {}

    def uri(self, source: str) -> str:
        if not source.startswith("runs:/"):
            return source
        run_id, _, path = source.removeprefix("runs:/").partition("/")
        if run_id not in self._roots:
            self._roots[run_id] = self.client.get_run(run_id).info.artifact_uri.rstrip("/")
        return f"{self._roots[run_id]}/{path}"

    def load(self, key: str, entry: dict[str, Any], where: str) -> Any:
        from mlfactory.registry._load import load_model_file

        target = self.work / entry["sha256"][:16]
        return load_model_file(
            self.settings,
            self.uri(entry["source"]),
            entry["sha256"],
            list(entry.get("types") or []),
            target,
            where=f"{where}, segment {key!r}",
        )


def _gate_metric(manifest: dict[str, Any]) -> str:
    from mlfactory.line._gate import GATE_METRICS

    refit = manifest.get("refit", "")
    if refit in GATE_METRICS:
        return refit
    if manifest.get("classes"):
        return "roc_auc" if len(manifest["classes"]) == 2 else "accuracy"
    return "r2"


def _loaded(name: str, version: str, model: Any, manifest: dict[str, Any]) -> Any:
    from mlfactory.registry import LoadedModel, ModelRef, VersionInfo
    from mlfactory.schema import InputColumn

    info = VersionInfo(name, version, "", "", [], {})
    features = set(manifest["features"])  # a segment column that is no feature is not scored
    inputs = [InputColumn.from_dict(c) for c in manifest["inputs"] if c["name"] in features]
    classes = list(getattr(model, "classes_", []))
    return LoadedModel(ModelRef(name, version=version), info, model, inputs, Path("."), classes)


def _judge(rules, primary, name, key, challenger, champion, champion_version, manifest, X, y):
    """One segment's gate outcome as (passed, reason, values)."""
    from mlfactory.line._gate import evaluate_gate

    if len(X) == 0:
        if champion is None:
            return True, "no held-out rows: nothing to judge and nothing to keep", {}
        return False, "no held-out rows to judge a challenger on: the champion's model stays", {}
    try:
        decision = evaluate_gate(
            rules,
            primary,
            _loaded(name, "challenger", challenger, manifest),
            None if champion is None else _loaded(name, champion_version, champion, manifest),
            X,
            y,
            model=f"{name}[{key}]",
        )
    except (KeyError, ValueError, IndexError) as exc:
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        if champion is None:
            return True, f"not judged ({text}): accepted, no model to keep", {}
        return False, f"not judged ({text}): the champion's model stays", {}
    values = {r.rule + (f".{r.metric}" if r.metric else ""): r.values for r in decision.rules}
    return decision.passed, decision.reason, values


def promote_fleet(
    settings: Settings,
    name: str,
    *,
    run_id: str,
    alias: str = "champion",
    rules: Any = None,
    line: str | None = None,
) -> FleetPromotion:
    """Register the fleet of ``run_id`` as a new version of ``name``, segment by segment.

    Each segment's challenger is gated against the segment's model in the version ``alias``
    points at (on the challenger's held-out rows of that segment); one that fails keeps the
    previous model. If no segment passes, nothing is registered and the alias stays. ``line``
    names the factory line whose gate this is, in the decision record.
    """
    from mlflow.exceptions import MlflowException

    from mlfactory.db import get_engine
    from mlfactory.line._gate import Decision, RuleResult, heldout_sha256, save_decision
    from mlfactory.line._spec import GateRules
    from mlfactory.registry import ModelRef, resolve_version
    from mlfactory.registry._registry import _discard_version, _version_info
    from mlfactory.tracking import open_tracking, reap_stale_runs

    rules = rules or GateRules()
    client = open_tracking(settings)
    reap_stale_runs(client, settings.stale_run_timeout, by="mlfactory promote")
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ModelNotFound(f"run {run_id!r} not found in the tracking store") from None
    if run.data.tags.get("mlfactory.fleet") != "true":
        raise ModelNotFound(f"run {run_id!r} is not a fleet training (no mlfactory.fleet tag)")
    refuse_single_name(client, name)
    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-promote-"))
    try:
        manifest = _run_manifest(settings, run, work / "manifest")
        heldout = pd.read_parquet(
            _download(settings, f"runs:/{run_id}/{ARTIFACT_DIR}/heldout.parquet", work / "heldout")
        )
        try:
            champion_info = resolve_version(client, ModelRef(name, alias))
        except ModelNotFound:
            champion_info = None
        champion_manifest: dict[str, Any] = {"segments": {}, "fallback": None}
        if champion_info is not None:
            if not is_fleet_version(champion_info):
                raise ModelNotFound(
                    f"{name}@{alias} (version {champion_info.version}) is a single model, not a "
                    "fleet; register the fleet under another name"
                )
            champion_manifest = load_version_manifest(settings, champion_info, work / "champion")
        files = ModelFiles(settings, work / "files")
        primary = _gate_metric(manifest)
        features = manifest["features"]
        target = next(c for c in heldout.columns if c not in features and c != "__segment__")
        by_segment = heldout.groupby("__segment__", sort=False).indices
        outcomes: dict[str, tuple[bool, str, dict[str, Any]]] = {}
        challengers = dict(manifest["segments"])
        if manifest.get("fallback"):
            challengers[FALLBACK_KEY] = manifest["fallback"]
        old = dict(champion_manifest["segments"])
        if champion_manifest.get("fallback"):
            old[FALLBACK_KEY] = champion_manifest["fallback"]
        where = f"fleet run {run_id}"
        for key, entry in challengers.items():
            rows = (
                np.arange(len(heldout))
                if key == FALLBACK_KEY
                else by_segment.get(key, np.array([], dtype=int))
            )
            X, y = heldout.iloc[rows][features], heldout.iloc[rows][target]
            challenger = files.load(key, entry, where)  # every file verified, even if kept out
            previous = old.get(key)
            if previous is not None and previous["sha256"] == entry["sha256"]:
                outcomes[key] = (False, "the same file as the champion's: kept by reference", {})
                continue
            champion = (
                None
                if previous is None
                else files.load(key, previous, f"{name}@{alias} v{champion_info.version}")
            )
            outcomes[key] = _judge(
                rules, primary, name, key, challenger, champion,
                champion_info.version if champion_info else "", manifest, X, y,
            )  # fmt: skip
        accepted = sorted(k for k, (ok, _r, _v) in outcomes.items() if ok)
        kept = sorted(k for k in old if k not in accepted)
        engine = get_engine(settings.database_url)
        X_all, y_all = heldout[features], heldout[target]
        results = [
            RuleResult("segment", key, ok, reason, values)
            for key, (ok, reason, values) in sorted(outcomes.items())
        ]
        champion_version = champion_info.version if champion_info else None
        own = [k for k in accepted if k != FALLBACK_KEY]
        judged = len(outcomes) - (FALLBACK_KEY in outcomes)
        summary = (
            f"{len(own)} of {judged} segment model(s) accepted (gate on {primary})"
            + (
                f", fallback {'accepted' if FALLBACK_KEY in accepted else 'not accepted'}"
                if FALLBACK_KEY in outcomes
                else ""
            )
            + f"; {len(kept)} kept from {name}@{alias}"
            + (f" v{champion_version}" if champion_version else "")
        )
        if not accepted:
            decision = Decision(
                name, f"run:{run_id[:8]}", champion_version, False,
                f"rejected: no segment passed the gate; {summary}",
                heldout_sha256(X_all, y_all), len(X_all), results,
            )  # fmt: skip
            decision_id = save_decision(engine, decision, line)
            logger.info("fleet %s: %s", name, decision.reason)
            if champion_info is None:
                raise DataError(
                    f"fleet of run {run_id} not registered: no segment model passed the gate "
                    f"(decision {decision_id}; `mlfactory models decisions {name}`)"
                )
            return FleetPromotion(champion_info, False, [], kept, decision_id, decision.reason)

        merged_segments: dict[str, Any] = {}
        for key, entry in champion_manifest["segments"].items():
            merged_segments[key] = {**entry, "gate": "kept"}
        for key in accepted:
            if key != FALLBACK_KEY:
                merged_segments[key] = {**challengers[key], "gate": "accepted"}
        fallback = champion_manifest.get("fallback")
        fallback = {**fallback, "gate": "kept"} if fallback else None
        if FALLBACK_KEY in accepted:
            fallback = {**challengers[FALLBACK_KEY], "gate": "accepted"}
        tags = {
            FLEET_TAG: "true",
            "fleet.by": ",".join(manifest["by"]),
            "fleet.segments": str(len(merged_segments)),
            "fleet.accepted": str(len(accepted)),
            "fleet.kept": str(len(kept)),
            "spec": run.data.tags.get("mlfactory.spec", ""),
            "dataset": run.data.tags.get("mlfactory.dataset", ""),
            "dataset_sha256": run.data.tags.get("mlfactory.dataset_sha256", ""),
            "git_commit": run.data.tags.get("mlfactory.git_commit", ""),
            "cell": run.data.tags.get("mlfactory.cell", ""),
            **{
                f"metric.{k}": repr(v)
                for k, v in run.data.metrics.items()
                if k.startswith("test_") and math.isfinite(v)
            },
        }
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name, description="a fleet registered by mlfactory")
        version = client.create_model_version(
            name, f"runs:/{run_id}/{ARTIFACT_DIR}", run_id=run_id, tags=tags, await_creation_for=0
        )
        number = str(version.version)
        try:
            for entry in merged_segments.values():
                if entry.get("trained_in_version") is None:
                    entry["trained_in_version"] = number
            if fallback is not None and fallback.get("trained_in_version") is None:
                fallback["trained_in_version"] = number
            registered = {
                **{k: v for k, v in manifest.items() if k not in ("segments", "fallback")},
                "name": name,
                "version": number,
                "segments": merged_segments,
                "fallback": fallback,
                "gate": {"primary": primary, "accepted": accepted, "kept": kept},
            }
            folder = work / "registered"
            folder.mkdir()
            path = folder / "manifest.json"
            path.write_text(json.dumps(registered, indent=2, default=str), encoding="utf-8")
            from mlfactory.serialization import file_sha256

            artifact_dir = f"{ARTIFACT_DIR}/registry/{name}/v{number}"
            client.log_artifact(run_id, str(path), artifact_dir)
            decision = Decision(
                name, number, champion_version, True, f"accepted: {summary}",
                heldout_sha256(X_all, y_all), len(X_all), results,
            )  # fmt: skip
            decision_id = save_decision(engine, decision, line)
            for key, value in {
                MANIFEST_TAG: f"{artifact_dir}/manifest.json",
                MANIFEST_SHA_TAG: file_sha256(path),
                "gate.decision_id": str(decision_id),
                "gate.passed": "true",
                "gate.reason": decision.reason[:4_000],
            }.items():
                client.set_model_version_tag(name, number, key, value)
            # the alias moves last: a server polling it never sees a version without its manifest
            client.set_registered_model_alias(name, alias, number)
        except BaseException:
            _discard_version(client, name, number)
            raise
        info = _version_info(client, client.get_model_version(name, number))
        logger.info("registered fleet %s version %s (%s): %s", name, number, alias, summary)
        return FleetPromotion(info, True, accepted, kept, decision_id, decision.reason)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _download(settings: Settings, uri: str, target: Path) -> Path:
    import mlflow

    from mlfactory.registry._load import check_model_source
    from mlfactory.tracking import tracking_uri

    check_model_source(settings, uri)
    target.mkdir(parents=True, exist_ok=True)
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(target), tracking_uri=tracking_uri(settings)
        )
    )


def describe_fleet(settings: Settings, reference: str, worst: int = 5) -> dict[str, Any]:
    """``models show FLEET``'s summary: segments, fallback share, worst segments, provenance,
    and one row per segment (small ones on the fallback, then the fallback itself)."""
    from mlfactory.registry import parse_model_ref, resolve_version
    from mlfactory.tracking import open_tracking

    ref = parse_model_ref(reference)
    info = resolve_version(open_tracking(settings, read_only=True), ref)
    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-show-"))
    try:
        manifest = load_version_manifest(settings, info, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    segments = manifest["segments"]
    small = manifest.get("small_segments", [])
    metric = f"test_{manifest.get('refit', '')}"
    scored = sorted(
        ((key, entry["metrics"].get(metric)) for key, entry in segments.items()),
        key=lambda item: (item[1] is None, item[1] if item[1] is not None else 0.0),
    )
    versions: dict[str, int] = {}
    for entry in segments.values():
        version = str(entry.get("trained_in_version"))
        versions[version] = versions.get(version, 0) + 1
    total = len(segments) + len(small)
    rows = [_segment_row(key, entry, "own") for key, entry in sorted(segments.items())]
    rows += [{"segment": key, "model": "fallback"} for key in sorted(small)]
    if manifest.get("fallback"):
        rows.append(_segment_row(FALLBACK_KEY, manifest["fallback"], "fallback"))
    return {
        "name": info.name,
        "version": info.version,
        "aliases": info.aliases,
        "by": manifest["by"],
        "segments": len(segments),
        "small_segments": len(small),
        "fallback": "global" if manifest.get("fallback") else "none",
        "fallback_share": (len(small) / total) if total else 0.0,
        "metric": metric,
        "worst": [{"segment": k, metric: v} for k, v in scored[:worst]],
        "trained_in_versions": versions,
        "gate": manifest.get("gate", {}),
        "test_scores": manifest.get("test_scores", {}),
        "rows": rows,
    }


def _segment_row(key: str, entry: dict[str, Any], model: str) -> dict[str, Any]:
    """One segment of ``models show --json``: where its model comes from and its scores."""
    return {
        "segment": key,
        "model": model,
        "values": entry.get("values", []),
        "train_rows": entry.get("train_rows"),
        "metrics": entry.get("metrics", {}),
        "best_params": entry.get("best_params", {}),
        "trained_in_run": entry.get("trained_in_run"),
        "trained_in_version": entry.get("trained_in_version"),
        "gate": entry.get("gate"),
        "source": entry.get("source"),
        "sha256": entry.get("sha256"),
    }


def promotion_dict(result: FleetPromotion) -> dict[str, Any]:
    data = asdict(result)
    data["info"] = asdict(result.info) if result.info is not None else None
    return data
