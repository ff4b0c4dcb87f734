"""Leakage-safe splits: time splits with a purge gap, walk-forward CV, and reproducible hold-outs.

Time-ordered data is split on DATES, never on rows: every row (every ticker) of a date lands on the
same side. A label that looks ``horizon`` dates ahead would leak the first test dates into the last
training rows, so the ``horizon`` dates just before the test dates are purged from training.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection import train_test_split as _sk_train_test_split

from mlfactory.datasets._base import Dataset, Task
from mlfactory.exceptions import DataError, SpecError

__all__ = [
    "DatasetSplit",
    "SplitRecord",
    "WalkForwardSplit",
    "index_digest",
    "time_split_indices",
    "time_train_test_split",
    "train_test_split_for",
    "walk_forward_for",
]


def _check_fraction(test_size: float) -> float:
    if isinstance(test_size, bool) or not isinstance(test_size, int | float):
        raise SpecError(f"test_size must be a fraction between 0 and 1, got {test_size!r}")
    if not 0.0 < float(test_size) < 1.0:
        raise SpecError(f"test_size must be a fraction strictly between 0 and 1, got {test_size}")
    return float(test_size)


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _date_codes(times: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct dates and, for each row, the position of its date among them."""
    values = np.asarray(times)
    if values.ndim != 1:
        raise DataError(f"dates must be one-dimensional, got shape {values.shape}")
    if pd.isna(pd.Series(values)).any():
        raise DataError("dates contain missing values; every row needs a date")
    return np.unique(values, return_inverse=True)


def time_split_indices(
    times: Any, test_size: float, purge: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of train and test: the last ``test_size`` of the distinct dates is test.

    The ``purge`` dates just before the first test date belong to neither side.
    """
    test_size = _check_fraction(test_size)
    purge = _check_count("purge", purge, 0)
    unique, codes = _date_codes(times)
    n_dates = len(unique)
    n_test = max(1, math.ceil(test_size * n_dates - 1e-9))
    first_test = n_dates - n_test
    train_end = first_test - purge
    if train_end < 1:
        raise DataError(
            f"cannot split {n_dates} distinct dates with test_size={test_size} and a purge of "
            f"{purge}: no training dates would remain"
        )
    return np.flatnonzero(codes < train_end), np.flatnonzero(codes >= first_test)


def _dataset_times(dataset: Dataset) -> np.ndarray:
    if not dataset.is_time_ordered:
        raise SpecError(f"dataset {dataset.name!r} has no time column; a time split needs one")
    if dataset.time_column not in dataset.X.columns:
        raise DataError(
            f"dataset {dataset.name!r}: time column {dataset.time_column!r} is not a column of X"
        )
    return dataset.X[dataset.time_column].to_numpy()


def time_train_test_split(
    dataset: Dataset, test_size: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Train/test row positions of a time-ordered dataset, purging ``dataset.horizon`` dates."""
    return time_split_indices(_dataset_times(dataset), test_size, purge=dataset.horizon)


class WalkForwardSplit(BaseCrossValidator):
    """Walk-forward CV on dates: expanding training windows, purge before, embargo after.

    The distinct dates are cut into ``n_splits`` validation blocks of ``test_size`` dates (default:
    as large as fits with a first training window at least as long) that end at the last date.
    Fold ``k`` validates on block ``k`` and trains on every earlier date except the ``purge`` dates
    just before the block (a label looking ``purge`` dates ahead would reach into it). After each
    block, ``embargo`` dates are dropped from validation: the next block starts after them, so
    consecutive validation blocks never touch (rows serially correlated with a block's last dates
    are not scored as if independent); later folds still train on them.

    Dates come from ``dates`` (an array aligned with ``X``, or the name of a column of ``X``) or,
    when ``dates`` is ``None``, from the ``groups`` argument of :meth:`split`.
    """

    def __init__(
        self,
        n_splits: int = 5,
        purge: int = 0,
        embargo: int = 0,
        dates: Any = None,
        test_size: int | None = None,
    ) -> None:
        self.n_splits = n_splits
        self.purge = purge
        self.embargo = embargo
        self.dates = dates
        self.test_size = test_size

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds."""
        return _check_count("n_splits", self.n_splits, 2)

    def _times(self, X: Any, groups: Any) -> np.ndarray:
        if isinstance(self.dates, str):
            if not isinstance(X, pd.DataFrame) or self.dates not in X.columns:
                raise DataError(f"WalkForwardSplit: X has no date column {self.dates!r}")
            return X[self.dates].to_numpy()
        times = self.dates if self.dates is not None else groups
        if times is None:
            raise SpecError(
                "WalkForwardSplit needs the dates: pass dates=... (array or column name) when "
                "constructing it, or groups=dates to split()"
            )
        times = np.asarray(times)
        if X is not None and len(times) != len(X):
            raise DataError(f"WalkForwardSplit: {len(times)} dates for {len(X)} rows")
        return times

    def fold_bounds(self, n_dates: int) -> list[tuple[int, int, int]]:
        """For each fold, ``(train_end, test_start, test_end)`` as positions among distinct dates.

        Training dates are ``[0, train_end)``, validation dates ``[test_start, test_end)``.
        """
        n_splits = self.get_n_splits()
        purge = _check_count("purge", self.purge, 0)
        embargo = _check_count("embargo", self.embargo, 0)
        gaps = embargo * (n_splits - 1)
        if self.test_size is None:
            size = (n_dates - purge - gaps) // (n_splits + 1)
        else:
            size = _check_count("test_size", self.test_size, 1)
        first_train = n_dates - gaps - n_splits * size - purge
        if size < 1 or first_train < 1:
            needed = gaps + n_splits * max(size, 1) + purge + 1
            raise DataError(
                f"WalkForwardSplit(n_splits={n_splits}, purge={purge}, embargo={embargo}) needs at "
                f"least {needed} distinct dates, got {n_dates}"
            )
        bounds = []
        for k in range(n_splits):
            test_end = n_dates - (n_splits - 1 - k) * (size + embargo)
            test_start = test_end - size
            bounds.append((test_start - purge, test_start, test_end))
        return bounds

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, validation)`` row positions for each fold."""
        unique, codes = _date_codes(self._times(X, groups))
        for train_end, test_start, test_end in self.fold_bounds(len(unique)):
            train = np.flatnonzero(codes < train_end)
            test = np.flatnonzero((codes >= test_start) & (codes < test_end))
            yield train, test

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None):
        for _, test in self.split(X, y, groups):
            yield test


def walk_forward_for(dataset: Dataset, n_splits: int = 5, embargo: int = 0) -> WalkForwardSplit:
    """A :class:`WalkForwardSplit` over the dataset's dates, purging ``dataset.horizon`` dates."""
    return WalkForwardSplit(
        n_splits=n_splits, purge=dataset.horizon, embargo=embargo, dates=_dataset_times(dataset)
    )


def index_digest(index: pd.Index) -> str:
    """SHA-256 of the sorted index values (one per line): equal digests, equal row sets."""
    values = index.tolist()
    try:
        ordered = sorted(values)
    except TypeError:
        ordered = sorted(values, key=str)
    return hashlib.sha256("\n".join(map(str, ordered)).encode()).hexdigest()


@dataclass(frozen=True)
class SplitRecord:
    """What identifies a hold-out split, so that two runs can be shown to use the same one."""

    method: str  # "stratified", "random", "unstratified" (test_stratify = false) or "time"
    test_size: float
    seed: int | None
    n_train: int
    n_test: int
    train_sha256: str
    test_sha256: str
    purge: int = 0
    train_start: str | None = None
    train_end: str | None = None
    test_start: str | None = None
    test_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DatasetSplit(NamedTuple):
    train: np.ndarray
    test: np.ndarray
    record: SplitRecord


def _as_text(value: Any) -> str:
    return pd.Timestamp(value).isoformat() if isinstance(value, np.datetime64) else str(value)


def train_test_split_for(
    dataset: Dataset, test_size: float = 0.2, seed: int = 0, *, stratify: bool = True
) -> DatasetSplit:
    """The hold-out split a dataset calls for, with a record of it.

    Time-ordered data: :func:`time_train_test_split`. Classification: stratified random split.
    Regression: random split. Indices are row positions into ``dataset.X``, sorted.

    ``stratify=False`` is a notebook's ``train_test_split(X, y, test_size=..., random_state=seed)``
    exactly: not stratified, and the positions stay in the (shuffled) order it returns, so folds
    cut without shuffling are the notebook's folds. Time-ordered data ignores it.
    """
    test_size = _check_fraction(test_size)
    n_rows = len(dataset.X)
    extra: dict[str, Any] = {}
    if dataset.is_time_ordered:
        times = _dataset_times(dataset)
        train, test = time_train_test_split(dataset, test_size)
        method, used_seed = "time", None
        extra = {
            "purge": dataset.horizon,
            "train_start": _as_text(times[train].min()),
            "train_end": _as_text(times[train].max()),
            "test_start": _as_text(times[test].min()),
            "test_end": _as_text(times[test].max()),
        }
    else:
        labels = None
        method = "random"
        if stratify and dataset.task is Task.CLASSIFICATION:
            counts = dataset.y.value_counts()
            if (counts < 2).any():
                rare = ", ".join(map(str, counts[counts < 2].index[:5]))
                raise DataError(
                    f"dataset {dataset.name!r}: class(es) {rare} have a single row; a stratified "
                    "split needs at least 2 rows per class"
                )
            labels, method = dataset.y.to_numpy(), "stratified"
        try:
            train, test = _sk_train_test_split(
                np.arange(n_rows), test_size=test_size, random_state=seed, stratify=labels
            )
        except ValueError as exc:
            raise DataError(f"dataset {dataset.name!r}: cannot split: {exc}") from exc
        if stratify:
            train, test = np.sort(train), np.sort(test)
        else:
            method = "unstratified"  # and unsorted
        used_seed = seed
    record = SplitRecord(
        method=method,
        test_size=test_size,
        seed=used_seed,
        n_train=len(train),
        n_test=len(test),
        train_sha256=index_digest(dataset.X.index[train]),
        test_sha256=index_digest(dataset.X.index[test]),
        **extra,
    )
    return DatasetSplit(train, test, record)
