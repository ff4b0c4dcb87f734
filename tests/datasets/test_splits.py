"""Leakage-safe splits on hand-made dates: exact boundaries, purge and embargo, reproducibility."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score

from mlfactory.datasets import (
    ColumnRoles,
    Dataset,
    Task,
    WalkForwardSplit,
    time_train_test_split,
    train_test_split_for,
    walk_forward_for,
)
from mlfactory.datasets.splits import index_digest, time_split_indices
from mlfactory.exceptions import DataError, SpecError

DATES = pd.bdate_range("2024-01-01", periods=12)  # d0 .. d11


def panel(n_dates: int = 12, tickers: tuple[str, ...] = ("AAA", "BBB")) -> pd.DataFrame:
    """Rows interleaved by ticker, shuffled, so that row order never stands in for time."""
    dates = pd.bdate_range("2024-01-01", periods=n_dates)
    frame = pd.DataFrame(
        [(d, t) for d in dates for t in tickers], columns=["date", "ticker"]
    ).sample(frac=1.0, random_state=0)
    frame["x"] = np.arange(len(frame), dtype=float)
    return frame.reset_index(drop=True)


def dataset_of(frame: pd.DataFrame, horizon: int) -> Dataset:
    return Dataset(
        name="panel",
        X=frame[["date", "x"]],
        y=pd.Series(np.arange(len(frame)) % 2, name="y"),
        task=Task.CLASSIFICATION,
        roles=ColumnRoles(numeric=("x",)),
        time_column="date",
        groups=frame["ticker"],
        horizon=horizon,
    )


def date_positions(frame: pd.DataFrame, rows: np.ndarray) -> set[int]:
    lookup = {d: i for i, d in enumerate(sorted(frame["date"].unique()))}
    return {lookup[d] for d in frame["date"].iloc[rows]}


def test_time_split_exact_boundaries_with_purge() -> None:
    frame = panel(10)
    train, test = time_split_indices(frame["date"], test_size=0.3, purge=1)
    assert date_positions(frame, test) == {7, 8, 9}
    assert date_positions(frame, train) == {0, 1, 2, 3, 4, 5}  # date 6 purged
    assert len(test) == 6 and len(train) == 12  # every ticker's rows on those dates
    assert set(frame["ticker"].iloc[test]) == {"AAA", "BBB"}


def test_time_train_test_split_purges_the_dataset_horizon() -> None:
    frame = panel(10)
    train, test = time_train_test_split(dataset_of(frame, horizon=2), test_size=0.2)
    assert date_positions(frame, test) == {8, 9}
    assert date_positions(frame, train) == {0, 1, 2, 3, 4, 5}
    # no training date within the horizon before any test date
    gap = min(date_positions(frame, test)) - max(date_positions(frame, train))
    assert gap > 2


def test_time_split_rejects_no_training_left() -> None:
    with pytest.raises(DataError, match="no training dates"):
        time_split_indices(DATES[:3], test_size=0.5, purge=2)
    with pytest.raises(SpecError, match="test_size"):
        time_split_indices(DATES, test_size=1.5)


def test_walk_forward_exact_folds_with_purge() -> None:
    splitter = WalkForwardSplit(n_splits=3, purge=1)
    assert splitter.fold_bounds(12) == [(5, 6, 8), (7, 8, 10), (9, 10, 12)]
    frame = panel(12)
    folds = list(splitter.split(frame, groups=frame["date"]))
    assert splitter.get_n_splits() == 3 == len(folds)
    expected = [
        (set(range(5)), {6, 7}),
        (set(range(7)), {8, 9}),
        (set(range(9)), {10, 11}),
    ]
    for (train, test), (train_dates, test_dates) in zip(folds, expected, strict=True):
        assert date_positions(frame, train) == train_dates
        assert date_positions(frame, test) == test_dates
        assert len(test) == 2 * len(test_dates)  # both tickers


def test_walk_forward_embargo_leaves_gaps_between_validation_blocks() -> None:
    splitter = WalkForwardSplit(n_splits=3, purge=0, embargo=1)
    assert splitter.fold_bounds(12) == [(4, 4, 6), (7, 7, 9), (10, 10, 12)]
    frame = panel(12)
    folds = list(splitter.split(frame, groups=frame["date"]))
    validated = set().union(*(date_positions(frame, test) for _, test in folds))
    assert {6, 9}.isdisjoint(validated)  # the embargo date after each block is never scored
    assert 6 in date_positions(frame, folds[1][0])  # ...but later folds train on it


@pytest.mark.parametrize(
    ("n_dates", "n_splits", "purge", "embargo"), [(40, 4, 3, 2), (25, 5, 1, 0)]
)
def test_walk_forward_never_trains_within_purge_of_validation(
    n_dates: int, n_splits: int, purge: int, embargo: int
) -> None:
    frame = panel(n_dates, tickers=("A", "B", "C"))
    splitter = WalkForwardSplit(n_splits, purge=purge, embargo=embargo, dates="date")
    previous_train: set[int] = set()
    for train, test in splitter.split(frame):
        train_dates, test_dates = date_positions(frame, train), date_positions(frame, test)
        assert max(train_dates) + purge < min(test_dates)  # purge gap respected
        assert previous_train <= train_dates  # expanding window
        assert test_dates == set(range(min(test_dates), max(test_dates) + 1))
        previous_train = train_dates
    assert max(test_dates) == n_dates - 1


def test_walk_forward_errors() -> None:
    with pytest.raises(DataError, match="needs at least"):
        list(WalkForwardSplit(n_splits=5, purge=2).split(np.zeros(6), groups=DATES[:6]))
    with pytest.raises(SpecError, match="n_splits"):
        WalkForwardSplit(n_splits=1).get_n_splits()
    with pytest.raises(SpecError, match="needs the dates"):
        list(WalkForwardSplit(3).split(np.zeros(12)))


def test_walk_forward_works_inside_scikit_learn() -> None:
    frame = panel(30)
    X, y = frame[["x"]], frame["x"] * 2.0 + 1.0
    splitter = WalkForwardSplit(n_splits=4, purge=1, dates=frame["date"].to_numpy())
    scores = cross_val_score(LinearRegression(), X, y, cv=splitter, scoring="r2")
    assert len(scores) == 4 and np.allclose(scores, 1.0)
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=WalkForwardSplit(3))
    search.fit(X, (frame["x"] > frame["x"].median()).astype(int), groups=frame["date"])
    assert len(search.cv_results_["split0_test_score"]) == 2
    assert "WalkForwardSplit(" in repr(splitter) and "purge=1" in repr(splitter)


def test_walk_forward_for_dataset_uses_horizon() -> None:
    frame = panel(20)
    splitter = walk_forward_for(dataset_of(frame, horizon=3), n_splits=2)
    assert splitter.purge == 3
    for train, test in splitter.split(frame):
        assert max(date_positions(frame, train)) + 3 < min(date_positions(frame, test))


def classification_dataset(n: int = 200) -> Dataset:
    rng = np.random.default_rng(0)
    y = pd.Series((np.arange(n) % 4 == 0).astype(int), name="y")  # 25% positives
    X = pd.DataFrame({"x": rng.normal(size=n)}, index=pd.RangeIndex(1000, 1000 + n))
    return Dataset("toy", X, y.set_axis(X.index), Task.CLASSIFICATION, ColumnRoles(("x",)))


def test_stratified_split_keeps_class_share_and_is_reproducible() -> None:
    data = classification_dataset()
    first = train_test_split_for(data, test_size=0.25, seed=3)
    again = train_test_split_for(data, test_size=0.25, seed=3)
    other = train_test_split_for(data, test_size=0.25, seed=4)
    assert first.record.method == "stratified"
    assert first.record.n_test == 50 and first.record.n_train == 150
    assert int(data.y.iloc[first.test].sum()) in {12, 13}  # 25% of 50, rounded either way
    assert first.record == again.record
    assert first.record.test_sha256 != other.record.test_sha256
    assert set(first.train).isdisjoint(first.test)
    values = sorted(data.X.index[first.test].tolist())
    expected = hashlib.sha256("\n".join(map(str, values)).encode()).hexdigest()
    assert first.record.test_sha256 == expected
    assert first.record.to_dict()["seed"] == 3


def test_regression_split_is_random_and_time_data_split_on_dates() -> None:
    data = classification_dataset()
    regression = Dataset("r", data.X, data.y.astype(float), Task.REGRESSION, data.roles)
    split = train_test_split_for(regression, test_size=0.2, seed=0)
    assert split.record.method == "random" and split.record.n_test == 40
    frame = panel(10)
    timed = train_test_split_for(dataset_of(frame, horizon=1), test_size=0.2, seed=99)
    record = timed.record
    assert record.method == "time" and record.seed is None and record.purge == 1
    assert record.test_start == DATES[8].isoformat() and record.test_end == DATES[9].isoformat()
    assert record.train_end == DATES[6].isoformat()  # date 7 purged


def test_single_row_class_cannot_be_stratified() -> None:
    data = classification_dataset(40)
    y = data.y.copy()
    y.iloc[0] = 7
    with pytest.raises(DataError, match="7"):
        train_test_split_for(Dataset("t", data.X, y, Task.CLASSIFICATION, data.roles), 0.2)


def test_index_digest_ignores_row_order() -> None:
    index = pd.Index([5, 3, 9])
    assert index_digest(index) == index_digest(pd.Index([9, 5, 3]))
    assert index_digest(index) != index_digest(pd.Index([5, 3]))
