"""Model fleets: one model per segment, trained, tracked, gated and served as one.

``[segments]`` in an experiment spec turns ``mlfactory train`` into a fleet training (one MLflow
parent run, a ``segment_results`` table, a bundle manifest); ``mlfactory promote`` registers the
bundle as one version with a per-segment gate, and ``mlfactory serve`` routes each record to its
segment's model (docs/fleets.md). The heavier names load on first use.
"""

from importlib import import_module
from typing import Any

from mlfactory.fleet._plan import (
    FALLBACK_KEY,
    FleetPlan,
    SegmentPlan,
    key_text,
    pack,
    plan_segments,
    segment_keys,
)

_LAZY = {
    "FleetResult": "mlfactory.fleet._train",
    "train_fleet": "mlfactory.fleet._train",
    "FleetPromotion": "mlfactory.fleet._registry",
    "promote_fleet": "mlfactory.fleet._registry",
    "describe_fleet": "mlfactory.fleet._registry",
    "best_fleet_run": "mlfactory.fleet._registry",
    "FleetModel": "mlfactory.fleet._serve",
    "FleetPredictor": "mlfactory.fleet._serve",
    "FleetDrift": "mlfactory.fleet._monitor",
    "FleetDriftReport": "mlfactory.fleet._monitor",
    "monitor_fleet": "mlfactory.fleet._monitor",
    "fleet_baseline": "mlfactory.fleet._monitor",
    "publish_fleet_drift": "mlfactory.fleet._monitor",
    "OpenedFleet": "mlfactory.fleet._version",
    "open_fleet": "mlfactory.fleet._version",
    "route_scores": "mlfactory.fleet._route",
    "FleetExplanation": "mlfactory.fleet._explain",
    "explain_fleet": "mlfactory.fleet._explain",
}

__all__ = [
    "FALLBACK_KEY",
    "FleetDrift",
    "FleetDriftReport",
    "FleetExplanation",
    "FleetModel",
    "FleetPlan",
    "FleetPredictor",
    "FleetPromotion",
    "FleetResult",
    "OpenedFleet",
    "SegmentPlan",
    "best_fleet_run",
    "describe_fleet",
    "explain_fleet",
    "fleet_baseline",
    "key_text",
    "monitor_fleet",
    "open_fleet",
    "pack",
    "plan_segments",
    "promote_fleet",
    "publish_fleet_drift",
    "route_scores",
    "segment_keys",
    "train_fleet",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlfactory.fleet' has no attribute {name!r}")
