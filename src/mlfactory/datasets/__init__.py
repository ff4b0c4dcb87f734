"""Modelling datasets: named loaders, the user's own tables, synthetic raw files and safe splits.

The names below load their module when first used: ``Task`` (``mlfactory.datasets._task``)
needs neither pandas nor any loader, so ``mlfactory spec models`` and the model zoo import
neither (issue #21).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlfactory._lazy import lazy_exports

if TYPE_CHECKING:
    from mlfactory.datasets._adult import ADULT_TRUE_COEFFICIENTS, load_adult, synth_adult
    from mlfactory.datasets._base import ColumnRoles, Dataset
    from mlfactory.datasets._bundled import load_breast_cancer, load_diabetes
    from mlfactory.datasets._credit import CREDIT_TRUE_COEFFICIENTS, load_credit, synth_credit
    from mlfactory.datasets._fires import FIRES_TRUE_COEFFICIENTS, load_fires, synth_fires
    from mlfactory.datasets._registry import (
        DATASETS,
        SYNTHETIC,
        DatasetLoader,
        SyntheticName,
        list_datasets,
        load_dataset,
        write_synthetic,
    )
    from mlfactory.datasets._roles import infer_roles, infer_task
    from mlfactory.datasets._stocks import load_stocks
    from mlfactory.datasets._task import Task
    from mlfactory.datasets._user import USER_TABLE_KEYS, load_user_table
    from mlfactory.datasets.splits import (
        DatasetSplit,
        SplitRecord,
        WalkForwardSplit,
        time_train_test_split,
        train_test_split_for,
        walk_forward_for,
    )

_WHERE = {
    "_adult": ("ADULT_TRUE_COEFFICIENTS", "load_adult", "synth_adult"),
    "_base": ("ColumnRoles", "Dataset"),
    "_task": ("Task",),
    "_bundled": ("load_breast_cancer", "load_diabetes"),
    "_credit": ("CREDIT_TRUE_COEFFICIENTS", "load_credit", "synth_credit"),
    "_fires": ("FIRES_TRUE_COEFFICIENTS", "load_fires", "synth_fires"),
    "_registry": (
        "DATASETS",
        "SYNTHETIC",
        "DatasetLoader",
        "SyntheticName",
        "list_datasets",
        "load_dataset",
        "write_synthetic",
    ),
    "_roles": ("infer_roles", "infer_task"),
    "_stocks": ("load_stocks",),
    "_user": ("USER_TABLE_KEYS", "load_user_table"),
    "splits": (
        "DatasetSplit",
        "SplitRecord",
        "WalkForwardSplit",
        "time_train_test_split",
        "train_test_split_for",
        "walk_forward_for",
    ),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "ADULT_TRUE_COEFFICIENTS",
    "CREDIT_TRUE_COEFFICIENTS",
    "DATASETS",
    "FIRES_TRUE_COEFFICIENTS",
    "SYNTHETIC",
    "USER_TABLE_KEYS",
    "ColumnRoles",
    "Dataset",
    "DatasetLoader",
    "DatasetSplit",
    "SplitRecord",
    "SyntheticName",
    "Task",
    "WalkForwardSplit",
    "infer_roles",
    "infer_task",
    "list_datasets",
    "load_adult",
    "load_breast_cancer",
    "load_credit",
    "load_dataset",
    "load_diabetes",
    "load_fires",
    "load_stocks",
    "load_user_table",
    "synth_adult",
    "synth_credit",
    "synth_fires",
    "time_train_test_split",
    "train_test_split_for",
    "walk_forward_for",
    "write_synthetic",
]


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
