"""Model fleets: one model per segment, trained, tracked, gated and served as one.

``[segments]`` in an experiment spec turns ``mlfactory train`` into a fleet training (one MLflow
parent run, a ``segment_results`` table, a bundle manifest); ``mlfactory promote`` registers the
bundle as one version with a per-segment gate, and ``mlfactory serve`` routes each record to its
segment's model (docs/fleets.md). The heavier names load on first use.
"""

from mlfactory._lazy import lazy_exports
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
    "FleetResult": "_train",
    "train_fleet": "_train",
    "FleetPromotion": "_registry",
    "promote_fleet": "_registry",
    "describe_fleet": "_registry",
    "best_fleet_run": "_registry",
    "FleetModel": "_serve",
    "FleetPredictor": "_serve",
    "FleetDrift": "_monitor",
    "FleetDriftReport": "_monitor",
    "monitor_fleet": "_monitor",
    "fleet_baseline": "_monitor",
    "publish_fleet_drift": "_monitor",
    "OpenedFleet": "_version",
    "open_fleet": "_version",
    "route_scores": "_route",
    "FleetExplanation": "_explain",
    "explain_fleet": "_explain",
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

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
