"""The input schema of a registered model, as plain data (imports nothing heavy).

Kept apart from the registry (which imports MLflow) because it travels to Dask workers with every
batch-scoring task: unpickling it there must not import MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["NUMBER_FORMATS", "InputColumn"]

# MLmodel metadata key: {column: how training read its text as numbers} (see InputColumn)
NUMBER_FORMATS = "mlfactory_number_formats"


@dataclass(frozen=True)
class InputColumn:
    name: str
    type: str  # MLflow column type: double, long, integer, float, boolean, string, datetime
    required: bool = True
    # how training read the column's text as numbers ("decimal comma", "decimal point", ...):
    # a batch whose values read either way is read this way (None: the column was numbers)
    number_format: str | None = None

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> InputColumn:
        """One input of a fleet manifest (``{"name", "type", "required", "number_format"}``)."""
        recorded = item.get("number_format")
        return cls(
            str(item["name"]),
            str(item["type"]),
            bool(item.get("required", True)),
            number_format=str(recorded) if recorded else None,
        )
