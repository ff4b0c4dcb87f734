"""Output columns and input checks of batch scoring (scoring itself: ``mlfactory._batch_tasks``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlfactory._batch_tasks import proba_name, score_partition
from mlfactory.exceptions import DataError
from mlfactory.schema import InputColumn

__all__ = ["RESERVED_COLUMNS", "check_columns", "output_columns", "score_partition"]

RESERVED_COLUMNS = ("prediction", "model_version", "scored_at")


def output_columns(key_columns: Sequence[str], classes: Sequence[Any]) -> list[str]:
    """Column order of every output partition."""
    return [
        *key_columns,
        "prediction",
        *(proba_name(c) for c in classes),
        "model_version",
        "scored_at",
    ]


def check_columns(
    available: Sequence[str], inputs: Sequence[InputColumn], key_columns: Sequence[str], where: str
) -> None:
    """Raise :class:`DataError` naming every model or key column ``available`` lacks."""
    have = set(available)
    missing = [c for c in inputs if c.required and c.name not in have]
    if missing:
        shown = ", ".join(f"{c.name!r} ({c.type})" for c in missing)
        raise DataError(
            f"{where} lacks the model input column(s) {shown}; it has: {', '.join(available)}"
        )
    absent = [k for k in key_columns if k not in have]
    if absent:
        raise DataError(
            f"--key-columns {', '.join(absent)} not found in {where}; it has: "
            f"{', '.join(available)}"
        )
    clash = [k for k in key_columns if k in RESERVED_COLUMNS or k.startswith("proba_")]
    if clash:
        raise DataError(
            f"key column(s) {', '.join(clash)} collide with output columns "
            f"({', '.join(RESERVED_COLUMNS)}, proba_*); rename them in the input"
        )
