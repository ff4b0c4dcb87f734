"""Serving a fleet: a predictor that routes each record to its segment's model.

Segment models load lazily, through the trusted loader, into a bounded LRU cache (``size``
models at most); the fallback model stays loaded. A record whose segment has no model of its
own (a small or unseen segment, or one whose model the gate never accepted) is scored by the
fallback; with ``fallback = "none"`` it is refused (422). Every result says which model scored
each record (:attr:`FleetScoreResult.routes`), for the response header and the prediction log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlfactory.fleet._plan import FALLBACK_KEY
from mlfactory.fleet._route import LRUModels, RoutingEstimator
from mlfactory.serving._predictor import ScoreResult
from mlfactory.settings import Settings

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "FleetModel",
    "FleetPredictor",
    "FleetScoreResult",
    "fleet_predictor",
    "load_fleet",
    "route_label",
]

DEFAULT_CACHE_SIZE = 50
FALLBACK_LABEL = "fallback"


@dataclass(frozen=True)
class FleetScoreResult(ScoreResult):
    """A :class:`ScoreResult` that also says which model scored each record."""

    routes: list[str] = field(default_factory=list)  # segment key, or "fallback"


def route_label(route: str) -> str:
    return FALLBACK_LABEL if route == FALLBACK_KEY else route


class FleetModel(RoutingEstimator):
    """The fleet as one estimator: ``predict``/``predict_proba`` route by the segment columns.

    Holds the manifest, a bounded LRU of verified segment models and the fallback model.
    """

    def __init__(
        self, settings: Settings, manifest: dict[str, Any], work: Path, cache_size: int
    ) -> None:
        from mlfactory.fleet._registry import ModelFiles

        self.manifest = manifest
        self.by: list[str] = list(manifest["by"])
        self.features: list[str] = list(manifest["features"])
        self.classes_ = list(manifest.get("classes") or [])
        self.files = ModelFiles(settings, work)
        self.where = f"fleet {manifest.get('name', '')} v{manifest.get('version', '')}"
        self.cache = LRUModels(self._load, cache_size)
        fallback = manifest.get("fallback")
        self.fallback = (
            self.files.load(FALLBACK_KEY, fallback, self.where) if fallback is not None else None
        )

    def _load(self, key: str) -> Any | None:
        entry = self.manifest["segments"].get(key)
        return None if entry is None else self.files.load(key, entry, self.where)

    def get(self, key: str) -> Any | None:
        return self.fallback if key == FALLBACK_KEY else self.cache.get(key)


class FleetPredictor:
    """The service's predictor for a fleet version (``kind = "fleet"``)."""

    kind = "fleet"

    def __init__(self, loaded: Any, model: FleetModel) -> None:
        self.loaded, self.model = loaded, model
        self.classes = list(model.classes_)
        segments = len(model.manifest["segments"])
        self.reason = (
            f"a fleet of {segments} segment models by {', '.join(model.by)}, loaded on first use "
            f"into an LRU cache of {model.cache.size}; "
            + ("unseen segments go to the fallback" if model.fallback else "no fallback")
        )

    def score_batch(self, batch: Any) -> ScoreResult:
        return self.score(batch.frame)

    def score(self, frame: pd.DataFrame) -> FleetScoreResult:
        started = time.perf_counter()
        routed = self.model.route(frame)
        elapsed = (time.perf_counter() - started) * 1000.0
        return FleetScoreResult(
            routed.predictions,
            routed.probabilities,
            self.classes,
            elapsed,
            [route_label(r) for r in routed.routes],
        )


def load_fleet(
    settings: Settings, info: Any, work: Path, cache_size: int = DEFAULT_CACHE_SIZE
) -> Any:
    """A :class:`~mlfactory.registry.LoadedModel` whose ``model`` is a :class:`FleetModel`."""
    from mlfactory.fleet._registry import load_version_manifest
    from mlfactory.registry import LoadedModel, ModelRef
    from mlfactory.schema import InputColumn

    manifest = load_version_manifest(settings, info, work / "manifest")
    model = FleetModel(settings, manifest, work / "files", cache_size)
    inputs = [InputColumn.from_dict(c) for c in manifest["inputs"]]
    ref = ModelRef(info.name, version=info.version)
    return LoadedModel(ref, info, model, inputs, work, list(model.classes_))


def fleet_predictor(
    settings: Settings, ref: Any, work: Path, cache_size: int = DEFAULT_CACHE_SIZE
) -> FleetPredictor | None:
    """The fleet predictor of ``ref``'s version, or ``None`` when that version is one model."""
    from mlfactory.fleet._registry import is_fleet_version
    from mlfactory.registry import resolve_version
    from mlfactory.tracking import open_tracking

    info = resolve_version(open_tracking(settings), ref)
    if not is_fleet_version(info):
        return None
    loaded = load_fleet(settings, info, work, cache_size)
    loaded.ref = ref  # the service's own reference (alias), as load_model gives
    return FleetPredictor(loaded, loaded.model)


def verify_fleet(settings: Settings, reference: str) -> bool:
    """``False`` when ``reference`` is a single model; for a fleet, load its verified manifest and
    fallback model once (raises unless they pass the trust rules) and return ``True``."""
    import shutil
    import tempfile

    from mlfactory.registry import parse_model_ref

    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-verify-"))
    try:
        return fleet_predictor(settings, parse_model_ref(reference), work, 1) is not None
    finally:
        shutil.rmtree(work, ignore_errors=True)


BATCH_CACHE_SIZE = 1_000


def load_fleet_for_batch(settings: Settings, reference: str, scheduler: str) -> Any | None:
    """``mlfactory predict``'s model when ``reference`` is a fleet (else ``None``).

    Each partition is grouped by segment and every group scored by its segment's model (loaded
    on first use, verified, kept in an LRU of up to 1,000 models), unseen segments by the
    fallback. On a Dask cluster (``scheduler`` an address) rows are grouped by segment across
    partitions, each segment's model on one worker (:mod:`mlfactory.batch._fleet`). The
    downloaded files live in a temporary folder removed with the model.
    """
    import shutil
    import tempfile
    import weakref

    from mlfactory.fleet._registry import is_fleet_version
    from mlfactory.registry import parse_model_ref, resolve_version
    from mlfactory.tracking import open_tracking

    info = resolve_version(open_tracking(settings), parse_model_ref(reference))
    if not is_fleet_version(info):
        return None
    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-batch-"))
    try:
        loaded = load_fleet(settings, info, work, BATCH_CACHE_SIZE)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    weakref.finalize(loaded.model, shutil.rmtree, str(work), True)
    return loaded
