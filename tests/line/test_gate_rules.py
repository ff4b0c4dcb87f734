"""The gate's rules on fitted scikit-learn models and data with a planted signal (no registry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score

from mlfactory.exceptions import SpecError
from mlfactory.line._gate import _fast_auc, evaluate_gate, heldout_sha256
from mlfactory.line._spec import GateRules
from mlfactory.registry import InputColumn, LoadedModel, ModelRef, VersionInfo


def loaded(model, version: str, columns: list[str]) -> LoadedModel:
    info = VersionInfo("m", version, "run", "src", [], {"model_sha256": version})
    inputs = [InputColumn(c, "double", True) for c in columns]
    classes = list(getattr(model, "classes_", []))
    return LoadedModel(ModelRef("m", version=version), info, model, inputs, Path("."), classes)


def planted(rows: int, seed: int, labels=("no", "yes")) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"signal": rng.normal(size=rows), "noise": rng.normal(size=rows)})
    p = 1 / (1 + np.exp(-2.5 * X["signal"]))
    y = pd.Series(np.where(rng.random(rows) < p, labels[1], labels[0]), name="y")
    return X, y


def test_string_labels_better_and_worse_and_relative_margin():
    X, y = planted(2_000, 0)
    Xt, yt = planted(800, 1)
    good = LogisticRegression().fit(X, y)
    noise_only = LogisticRegression().fit(X[["noise"]], y)
    rules = GateRules(resamples=300, guards={"neg_log_loss": 0.0})
    better = evaluate_gate(
        rules, "roc_auc", loaded(good, "2", ["signal", "noise"]),
        loaded(noise_only, "1", ["noise"]), Xt, yt, model="m",
    )  # fmt: skip
    assert not better.passed  # the challenger needs 'signal', which the champion does not take
    assert [r.rule for r in better.rules if not r.passed] == ["schema"]
    allowed = GateRules(resamples=300, guards={"neg_log_loss": 0.0}, allow_schema_change=True)
    better = evaluate_gate(
        allowed, "roc_auc", loaded(good, "2", ["signal", "noise"]),
        loaded(noise_only, "1", ["noise"]), Xt, yt, model="m",
    )  # fmt: skip
    assert better.passed, better.reason
    primary = next(r for r in better.rules if r.rule == "primary")
    assert primary.values["ci_low"] > 0.2
    assert primary.values["challenger"] == pytest.approx(
        roc_auc_score(yt, good.predict_proba(Xt)[:, 1])
    )
    worse = evaluate_gate(
        allowed, "roc_auc", loaded(noise_only, "3", ["noise"]),
        loaded(good, "2", ["signal", "noise"]), Xt, yt, model="m",
    )  # fmt: skip
    assert not worse.passed
    assert {r.rule for r in worse.rules if not r.passed} == {"primary", "guard"}
    # a relative margin of 90% of the champion's AUC cannot be cleared
    far = GateRules(resamples=300, margin=0.9, margin_kind="relative", allow_schema_change=True)
    high = evaluate_gate(
        far, "roc_auc", loaded(good, "2", ["signal", "noise"]),
        loaded(noise_only, "1", ["noise"]), Xt, yt, model="m",
    )  # fmt: skip
    assert not high.passed and "margin 0.4" in high.reason
    assert better.heldout_sha256 == worse.heldout_sha256 == heldout_sha256(Xt, yt)


def test_the_bootstrap_is_seeded_and_the_fast_auc_is_exact():
    X, y = planted(1_000, 2, labels=(0, 1))
    model = LogisticRegression().fit(X, y)
    scores = model.predict_proba(X)[:, 1]
    idx = np.random.default_rng(0).integers(0, len(y), size=(20, len(y)))
    fast = _fast_auc(y.to_numpy(), scores, idx)
    slow = [roc_auc_score(y.to_numpy()[i], scores[i]) for i in idx]
    assert np.allclose(fast, slow)
    weaker = LogisticRegression().fit(X[["noise"]], y)
    args = (
        GateRules(resamples=200, seed=5, allow_schema_change=True), "roc_auc",
        loaded(model, "2", ["signal", "noise"]), loaded(weaker, "1", ["noise"]), X, y,
    )  # fmt: skip
    one, two = evaluate_gate(*args, model="m"), evaluate_gate(*args, model="m")
    assert one.rules[1].values == two.rules[1].values


def test_regression_floors_and_tie():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=600)})
    y = pd.Series(3 * X["a"] + rng.normal(scale=0.5, size=600), name="y")
    linear = LinearRegression().fit(X, y)
    first = evaluate_gate(GateRules(), "r2", loaded(linear, "1", ["a"]), None, X, y, model="m")
    assert first.passed and "no champion" in first.reason and "floor 0.0000" in first.reason
    flat = DummyRegressor().fit(X, y)
    low = evaluate_gate(GateRules(), "r2", loaded(flat, "1", ["a"]), None, X, y, model="m")
    assert not low.passed and "r2 0.0000 does not beat chance, the floor 0.0000" in low.reason
    tie = evaluate_gate(
        GateRules(resamples=100), "neg_root_mean_squared_error",
        loaded(linear, "2", ["a"]), loaded(linear, "1", ["a"]), X, y, model="m",
    )  # fmt: skip
    assert not tie.passed and "ties champion v1" in tie.reason


def test_two_class_metrics_on_three_classes_are_refused():
    X, _ = planted(300, 4)
    y = pd.Series(np.resize(["a", "b", "c"], 300), name="y")
    model = LogisticRegression().fit(X, y)
    with pytest.raises(SpecError, match="two classes"):
        evaluate_gate(GateRules(), "roc_auc", loaded(model, "1", ["signal", "noise"]), None, X, y,
                      model="m")  # fmt: skip
    ok = evaluate_gate(
        GateRules(floors={"accuracy": 0.2}), "accuracy",
        loaded(model, "1", ["signal", "noise"]), None, X, y, model="m",
    )  # fmt: skip
    assert ok.passed


def test_slices_onnx_and_latency_rules():
    X, y = planted(3_000, 6)
    Xt, yt = planted(1_500, 7)
    good = LogisticRegression().fit(X, y)
    champion = loaded(good, "1", ["signal", "noise"])
    # a challenger blind to the signal where it is positive: it regresses on the upper quartiles
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    clip = ColumnTransformer(
        [("clip", FunctionTransformer(lambda v: np.minimum(v, 0)), ["signal"])],
        remainder="passthrough", verbose_feature_names_out=False,
    )  # fmt: skip
    pipeline = Pipeline([("clip", clip), ("clf", LogisticRegression())]).fit(X, y)
    challenger = loaded(pipeline, "2", ["signal", "noise"])
    rules = GateRules(resamples=100, margin=0.0, slices=["signal", "noise"], slice_tolerance=0.02)
    decision = evaluate_gate(rules, "roc_auc", challenger, champion, Xt, yt, model="m")
    by_rule = {(r.rule, r.metric): r for r in decision.rules}
    signal = by_rule[("slice", "signal")]
    assert not signal.passed and "worst slice signal=" in signal.reason
    assert len(signal.values["slices"]) == 4  # quartiles of a number
    assert not decision.passed

    champion.info.tags["onnx_status"] = "ok"
    challenger.info.tags["onnx_status"] = "fallback: cannot convert FunctionTransformer"
    onnx = by_rule_of(evaluate_gate(GateRules(resamples=100), "roc_auc", challenger, champion,
                                    Xt, yt, model="m"), "onnx")  # fmt: skip
    assert not onnx.passed and "FunctionTransformer" in onnx.reason
    relaxed = GateRules(resamples=100, require_onnx=False, latency_p99_ms=10_000)
    decision = evaluate_gate(relaxed, "roc_auc", champion, challenger, Xt, yt, model="m")
    latency = by_rule_of(decision, "latency")
    assert latency.passed and latency.values["p99_ms"] > 0
    strict = GateRules(resamples=100, latency_p99_ms=1e-6)
    first = evaluate_gate(strict, "roc_auc", champion, None, Xt, yt, model="m")
    assert not first.passed and "over the budget" in first.reason


def by_rule_of(decision, rule: str):
    return next(r for r in decision.rules if r.rule == rule)
