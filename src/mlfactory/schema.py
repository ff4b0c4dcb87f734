"""The input schema of a registered model, as plain data (imports nothing heavy).

Kept apart from the registry (which imports MLflow) because it travels to Dask workers with every
batch-scoring task: unpickling it there must not import MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InputColumn"]


@dataclass(frozen=True)
class InputColumn:
    name: str
    type: str  # MLflow column type: double, long, integer, float, boolean, string, datetime
    required: bool = True
