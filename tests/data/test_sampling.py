"""Sampling and splits: exact counts, determinism, clear errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlfactory.data.sampling import random_sample, stratified_sample, time_split
from mlfactory.exceptions import DataError, SpecError


@pytest.fixture
def df() -> pd.DataFrame:
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    order = np.random.default_rng(0).permutation(100)
    return pd.DataFrame({"label": np.array(labels)[order], "x": np.arange(100)}, index=order + 1000)


def test_random_sample_counts_order_and_determinism(df):
    s = random_sample(df, n=25, seed=1)
    assert len(s) == 25 and s.index.is_unique and s.index.isin(df.index).all()
    assert s["x"].is_monotonic_increasing  # original order kept
    pd.testing.assert_frame_equal(s, random_sample(df, n=25, seed=1))
    assert not s.index.equals(random_sample(df, n=25, seed=2).index)
    assert len(random_sample(df, frac=0.333)) == 33
    assert len(random_sample(df, frac=1.0)) == 100


def test_random_sample_is_uniform():
    # each of 10 rows drawn 3 at a time over 2000 seeds: ~600 times each
    frame = pd.DataFrame({"x": range(10)})
    hits = np.zeros(10)
    for seed in range(2000):
        hits[random_sample(frame, n=3, seed=seed)["x"].to_numpy()] += 1
    assert np.all(np.abs(hits - 600) < 100)


@pytest.mark.parametrize(
    ("n", "frac", "expected"),
    [
        (10, None, {"a": 6, "b": 3, "c": 1}),
        (None, 0.5, {"a": 30, "b": 15, "c": 5}),
        (7, None, {"a": 4, "b": 2, "c": 1}),
        (100, None, {"a": 60, "b": 30, "c": 10}),
    ],
)
def test_stratified_exact_counts(df, n, frac, expected):
    # n=7: quotas 4.2, 2.1, 0.7 -> floors 4, 2, 0 and the one left goes to the largest remainder c
    s = stratified_sample(df, "label", n=n, frac=frac, seed=3)
    assert s["label"].value_counts().to_dict() == expected
    pd.testing.assert_frame_equal(s, stratified_sample(df, ["label"], n=n, frac=frac, seed=3))


def test_stratified_two_columns_and_missing_class():
    frame = pd.DataFrame({"g": ["x"] * 8 + [None] * 4, "h": [0, 1] * 6})
    s = stratified_sample(frame, ["g", "h"], n=6, seed=0)
    counts = s.fillna({"g": "missing"}).groupby(["g", "h"]).size().to_dict()
    assert counts == {("missing", 0): 1, ("missing", 1): 1, ("x", 0): 2, ("x", 1): 2}


def test_time_split_strict_before_and_on_or_after():
    frame = pd.DataFrame(
        {"date": [dt.date(2023, 1, d) for d in (3, 1, 2, 5, 4)], "v": [3, 1, 2, 5, 4]}
    )
    before, after = time_split(frame, "date", "2023-01-03")
    assert before["v"].tolist() == [1, 2] and after["v"].tolist() == [3, 5, 4]
    stamps = frame.assign(date=pd.to_datetime(frame["date"]))
    b2, a2 = time_split(stamps, "date", pd.Timestamp("2023-01-06"))
    assert len(b2) == 5 and a2.empty


def test_errors(df):
    with pytest.raises(SpecError, match="exactly one of n"):
        random_sample(df, n=3, frac=0.1)
    with pytest.raises(SpecError, match="exactly one of n"):
        random_sample(df)
    with pytest.raises(DataError, match=r"n=101 rows .* from 100 rows"):
        random_sample(df, n=101)
    with pytest.raises(SpecError, match="frac"):
        random_sample(df, frac=1.5)
    with pytest.raises(DataError, match=r"unknown column.*nope.*available: label, x"):
        stratified_sample(df, "nope", n=3)
    with pytest.raises(DataError, match="unknown column"):
        time_split(df, "when", "2023-01-01")
    with pytest.raises(SpecError, match="cutoff"):
        time_split(pd.DataFrame({"d": pd.to_datetime(["2023-01-01"])}), "d", "not a date")
    with pytest.raises(DataError, match="1 missing date"):
        time_split(pd.DataFrame({"d": pd.to_datetime(["2023-01-01", None])}), "d", "2023-01-01")
