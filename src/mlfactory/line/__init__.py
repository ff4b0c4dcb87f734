"""The factory line: one spec from raw data to a champion, rerunning only what changed.

``mlfactory run LINE.toml`` runs the stages data -> dataset -> train -> gate -> promote ->
batch -> monitor, skipping each whose cache key matches its last finished record, and promotes
only what the gate (:mod:`mlfactory.line._gate`) accepts on evidence.

The gate (scikit-learn, pandas) is imported only when it is used: a rerun with nothing changed
loads neither. Every name loads with its module, so reading the gate's decisions
(``mlfactory models decisions``) builds no line spec model (pydantic).
"""

from typing import TYPE_CHECKING

from mlfactory._lazy import lazy_exports

if TYPE_CHECKING:
    from mlfactory.line._gate import Decision, RuleResult, evaluate_gate, read_decisions
    from mlfactory.line._records import LineBusy, StageRecord, stage_history
    from mlfactory.line._run import LineReport, StageFailed, StageOutcome, run_line
    from mlfactory.line._spec import STAGES, LineSpec, line_from_dict, load_line

__all__ = [
    "STAGES",
    "Decision",
    "LineBusy",
    "LineReport",
    "LineSpec",
    "RuleResult",
    "StageFailed",
    "StageOutcome",
    "StageRecord",
    "evaluate_gate",
    "line_from_dict",
    "load_line",
    "read_decisions",
    "run_line",
    "stage_history",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(("Decision", "RuleResult", "evaluate_gate", "read_decisions"), "_gate"),
        **dict.fromkeys(("LineBusy", "StageRecord", "stage_history"), "_records"),
        **dict.fromkeys(("LineReport", "StageFailed", "StageOutcome", "run_line"), "_run"),
        **dict.fromkeys(("STAGES", "LineSpec", "line_from_dict", "load_line"), "_spec"),
    },
)
