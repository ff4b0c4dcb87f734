"""Segment plans: keys, packing, the split cut by segment, a groups column as segment column."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.exceptions import DataError, SpecError
from mlfactory.fleet import FALLBACK_KEY, key_text, pack, plan_segments, segment_keys
from mlfactory.fleet._plan import check_segment_columns
from mlfactory.fleet._route import LRUModels, route_scores
from mlfactory.spec import spec_from_dict
from mlfactory.spec._schema import SegmentsSpec


def test_keys_read_the_same_from_any_source() -> None:
    assert key_text(1.0) == key_text(1) == key_text(np.int64(1)) == "1"
    assert key_text(None) == key_text(float("nan")) == "<missing>"
    assert key_text(["EU", 3.0]) == "EU|3"
    frame = pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", "y", "z"]})
    assert segment_keys(frame, ["a"]).tolist() == ["1", "2", "<missing>"]
    assert segment_keys(frame, ["b", "a"]).tolist() == ["x|1", "y|2", "z|<missing>"]
    with pytest.raises(SpecError, match="'c'"):
        segment_keys(frame, ["c"])


def test_small_segments_share_a_task_and_a_big_one_is_alone() -> None:
    assert pack({"a": 5, "b": 5, "c": 9, "d": 1}, 10) == [["c", "d"], ["a", "b"]]
    assert pack({"big": 50, "s": 2}, 10) == [["big"], ["s"]]
    tasks = pack({f"s{i:03d}": 1_600 for i in range(500)}, 20_000)
    assert len(tasks) == 42 and sorted(k for t in tasks for k in t) == sorted(
        f"s{i:03d}" for i in range(500)
    )


def _stocks_like() -> Dataset:
    """Time-ordered rows of three tickers; the ticker is the dataset's groups, not a feature."""
    dates = pd.date_range("2024-01-01", periods=40, freq="B")
    rows = [
        (d, t)
        for i, d in enumerate(dates)
        for t in ("AAA", "BBB", "CCC")
        if t != "CCC" or i < 10  # CCC: 10 days only
    ]
    frame = pd.DataFrame(rows, columns=["date", "ticker"])
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"date": frame["date"], "ret": rng.normal(size=len(frame))})
    y = pd.Series((X["ret"] > 0).astype(int), name="target")
    return Dataset(
        name="stocks-like",
        X=X,
        y=y,
        task=Task.CLASSIFICATION,
        roles=ColumnRoles(numeric=("ret",)),
        time_column="date",
        groups=frame["ticker"].rename("ticker"),
    )


def test_a_time_ordered_split_is_cut_by_segment_and_small_ones_use_the_fallback() -> None:
    data = _stocks_like()
    cut = data.X["date"] >= data.X["date"].iloc[int(len(data.X) * 0.8)]
    train_idx, test_idx = np.flatnonzero(~cut), np.flatnonzero(cut)
    plan = plan_segments(SegmentsSpec(by="ticker", min_rows=20), data, train_idx, test_idx)
    by_key = {s.key: s for s in plan.segments}
    assert sorted(by_key) == ["AAA", "BBB", "CCC"]
    for key, segment in by_key.items():
        assert (data.groups.iloc[segment.train_idx] == key).all()
        assert (data.groups.iloc[segment.test_idx] == key).all()
        if len(segment.test_idx):  # every test date after every training date, per segment
            assert (
                data.X["date"].iloc[segment.train_idx].max()
                < data.X["date"].iloc[segment.test_idx].min()
            )
    assert by_key["AAA"].status == "train" and by_key["AAA"].rows == 40
    assert by_key["CCC"].status == "fallback" and by_key["CCC"].rows == 10
    assert plan.summary()["fallback_rows"] == 10


def test_the_groups_column_is_a_segment_column_and_a_missing_one_is_named() -> None:
    data = _stocks_like()
    spec = spec_from_dict(
        {"name": "s", "dataset": "stocks", "model": "LogisticRegression",
         "segments": {"by": ["ticker"]}},
        validate=False,
    )  # fmt: skip
    check_segment_columns(spec, data)
    spec.segments = SegmentsSpec(by=["sector"])
    with pytest.raises(SpecError, match=r"'segments.by'.*'sector'.*date, ret, ticker"):
        check_segment_columns(spec, data)


class _Constant:
    classes_ = np.array([0, 1])

    def __init__(self, p: float) -> None:
        self.p = p

    def predict(self, X):
        return np.full(len(X), int(self.p > 0.5))

    def predict_proba(self, X):
        return np.column_stack([np.full(len(X), 1 - self.p), np.full(len(X), self.p)])


def test_routing_keeps_record_order_and_names_each_model() -> None:
    models = {"a": _Constant(0.9), "b": _Constant(0.2), FALLBACK_KEY: _Constant(0.6)}
    frame = pd.DataFrame({"seg": ["b", "a", "zz", "a", "b"], "x": range(5)})
    routed = route_scores(frame, ["seg"], models.get, classes=[0, 1])
    assert routed.routes == ["b", "a", FALLBACK_KEY, "a", "b"]
    assert routed.probabilities[:, 1].tolist() == [0.2, 0.9, 0.6, 0.9, 0.2]
    assert routed.predictions.tolist() == [0, 1, 1, 1, 0]
    no_fallback = {k: v for k, v in models.items() if k != FALLBACK_KEY}
    with pytest.raises(DataError, match="no model for segment\\(s\\) 'zz'"):
        route_scores(frame, ["seg"], no_fallback.get, classes=[0, 1])


def test_the_cache_never_holds_more_than_its_size() -> None:
    loads: list[str] = []

    def load(key: str):
        loads.append(key)
        return None if key == "none" else key.upper()

    cache = LRUModels(load, size=2)
    assert [cache.get(k) for k in ("a", "b", "a", "c", "none")] == ["A", "B", "A", "C", None]
    assert cache.keys() == ["a", "c"] and len(cache) == 2
    assert loads == ["a", "b", "c", "none"] and cache.evictions == 1
    with pytest.raises(ValueError, match="at least 1"):
        LRUModels(load, size=0)


def test_the_fleet_search_skips_training_fold_scores_and_keeps_the_test_folds() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from mlfactory.training import SearchConfig, run_search

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = pd.Series((X["a"] + rng.normal(scale=0.5, size=120) > 0).astype(int))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    config = SearchConfig(kind="grid", scoring=("roc_auc",), param_grid={"C": [0.1, 1.0]})
    full = run_search(LogisticRegression(), X, y, cv, config)
    lean = run_search(LogisticRegression(), X, y, cv, replace(config, train_scores=False))
    assert lean.candidates["mean_train_roc_auc"].isna().all()
    assert full.candidates["mean_train_roc_auc"].notna().all()
    pd.testing.assert_series_equal(
        lean.candidates["mean_test_roc_auc"], full.candidates["mean_test_roc_auc"]
    )
    assert lean.best_params == full.best_params
