"""Model fleets: one model per segment, trained, tracked, gated and served as one.

``[segments]`` in an experiment spec turns ``mlfactory train`` into a fleet training (one MLflow
parent run, a ``segment_results`` table, a bundle manifest); ``mlfactory promote`` registers the
bundle as one version with a per-segment gate, and ``mlfactory serve`` routes each record to its
segment's model (docs/fleets.md).
"""

from mlfactory.fleet._plan import (
    FALLBACK_KEY,
    FleetPlan,
    SegmentPlan,
    key_text,
    pack,
    plan_segments,
    segment_keys,
)

__all__ = [
    "FALLBACK_KEY",
    "FleetPlan",
    "SegmentPlan",
    "key_text",
    "pack",
    "plan_segments",
    "segment_keys",
]
