"""What every dataset loader returns: features, target, task and column roles."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mlfactory.datasets._task import Task

__all__ = ["ColumnRoles", "Dataset", "Task"]


@dataclass(frozen=True)
class ColumnRoles:
    """Which preprocessing each feature column gets."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    boolean: tuple[str, ...] = ()
    skewed: tuple[str, ...] = ()  # numeric columns a power transform should straighten

    @property
    def all(self) -> tuple[str, ...]:
        return self.numeric + self.categorical + self.boolean


@dataclass
class Dataset:
    """A modelling dataset.

    ``time_column`` names a column of ``X`` that orders rows in time (or ``None``): time-ordered
    data is never split at random. ``groups`` optionally labels rows (e.g. ticker) for group-aware
    splits.
    """

    name: str
    X: pd.DataFrame
    y: pd.Series
    task: Task
    roles: ColumnRoles
    time_column: str | None = None
    groups: pd.Series | None = None
    horizon: int = 0  # how many time steps the label looks ahead (purge gap for time splits)
    description: str = ""
    source: str = ""  # where it was read from (file path, SQL, package)
    metadata: dict[str, str] = field(default_factory=dict)
    # one {"column", "role", "reason"} per column of a user table (see decide_roles)
    role_decisions: list[dict[str, str]] = field(default_factory=list)
    # text columns read as numbers, and how ("decimal comma"...): recorded with the model, so
    # that scoring reads a batch the same way when its values read either way
    number_formats: dict[str, str] = field(default_factory=dict)

    @property
    def is_time_ordered(self) -> bool:
        return self.time_column is not None
