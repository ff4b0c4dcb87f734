"""The kind of prediction a dataset asks for, importable without pandas or any loader."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Task"]


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
