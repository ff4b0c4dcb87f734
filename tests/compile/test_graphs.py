"""The compiler on fitted pipelines, no registry: tree families beyond the zoo, multiclass,
missing values, values on the trees' thresholds, and the honest failures."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from _compile_data import FEATURES, mixed_frame
from sklearn import ensemble, tree
from sklearn.pipeline import Pipeline

from mlfactory.compile import TOLERANCE, compile_pipeline, make_session, onnx_feed
from mlfactory.compile._trees import HIST_THRESHOLD_SLACK
from mlfactory.datasets import ColumnRoles
from mlfactory.preprocessing import build_recipe
from mlfactory.schema import InputColumn

INPUTS = [
    InputColumn("a", "double"),
    InputColumn("b", "double"),
    InputColumn("c", "long"),
    InputColumn("flag", "boolean"),
    InputColumn("city", "string"),
]
ROLES = ColumnRoles(numeric=("a", "b", "c"), categorical=("city",), boolean=("flag",))
TRAIN, HELD_OUT = mixed_frame(300, seed=3), mixed_frame(300, seed=4)

TREES = {
    "DecisionTree": (tree.DecisionTreeClassifier, tree.DecisionTreeRegressor, {}),
    "ExtraTrees": (
        ensemble.ExtraTreesClassifier,
        ensemble.ExtraTreesRegressor,
        {"n_estimators": 8},
    ),
    "RandomForest": (
        ensemble.RandomForestClassifier,
        ensemble.RandomForestRegressor,
        {"n_estimators": 8},
    ),
    "GradientBoosting": (
        ensemble.GradientBoostingClassifier,
        ensemble.GradientBoostingRegressor,
        {"n_estimators": 15},
    ),
    "HistGradientBoosting": (
        ensemble.HistGradientBoostingClassifier,
        ensemble.HistGradientBoostingRegressor,
        {"max_iter": 15},
    ),
}


def _check(pipeline, inputs, rows: pd.DataFrame) -> onnx.ModelProto:
    """Compile, then score ``rows`` with the graph: labels equal, numbers within 1e-6."""
    verdict = compile_pipeline(pipeline, inputs, rows)
    assert verdict.ok, verdict.status
    assert verdict.max_abs_diff <= TOLERANCE and verdict.rows_checked == len(rows)
    outputs = make_session(verdict.model_bytes).run(None, onnx_feed(rows, inputs))
    expected = pipeline.predict(rows)
    if hasattr(pipeline, "predict_proba"):
        assert outputs[0].tolist() == expected.tolist()
        np.testing.assert_allclose(outputs[1], pipeline.predict_proba(rows), rtol=0, atol=TOLERANCE)
    else:
        np.testing.assert_allclose(outputs[0].ravel(), expected, rtol=0, atol=TOLERANCE)
    return onnx.load_from_string(verdict.model_bytes)


def _ops(graph: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in graph.graph.node}


@pytest.mark.parametrize("family", list(TREES))
@pytest.mark.parametrize("target", ["target", "multi", "value"])
def test_tree_families_compile_to_one_double_tree_ensemble(family, target) -> None:
    classifier, regressor, params = TREES[family]
    model = (regressor if target == "value" else classifier)(random_state=0, **params)
    pipeline = Pipeline([("prep", build_recipe("basic", ROLES, TRAIN)), ("model", model)])
    pipeline.fit(TRAIN[FEATURES], TRAIN[target])
    graph = _check(pipeline, INPUTS, HELD_OUT[FEATURES])
    assert "TreeEnsemble" in _ops(graph)
    assert {"TreeEnsembleClassifier", "TreeEnsembleRegressor"}.isdisjoint(_ops(graph))
    assert {o.domain: o.version for o in graph.opset_import}["ai.onnx.ml"] == 5


@pytest.mark.parametrize("family", ["DecisionTree", "RandomForest", "HistGradientBoosting"])
def test_missing_values_follow_each_split_as_scikit_learn_sends_them(family) -> None:
    """No imputer: NaN reaches the trees, which learnt where missing values go."""
    classifier, _, params = TREES[family]
    inputs = [InputColumn("a", "double"), InputColumn("b", "double")]
    model = classifier(random_state=0, **params).fit(TRAIN[["a", "b"]], TRAIN["target"])
    rows = HELD_OUT[["a", "b"]].copy()
    rows.iloc[::3, 0] = np.nan
    rows.iloc[::4, 1] = np.nan
    _check(model, inputs, rows)


@pytest.mark.parametrize("family", ["RandomForest", "HistGradientBoosting"])
def test_values_on_and_beside_every_threshold_go_the_same_way(family) -> None:
    """Rows exactly on each split and just either side: forests compare float32(x) (one double
    and one float32 step away), HistGradientBoosting compares x itself (beyond the widening)."""
    _, regressor, params = TREES[family]
    X = TRAIN[["a", "b"]].fillna(0.0)
    model = regressor(random_state=0, **params).fit(X, TRAIN["value"])
    if family == "RandomForest":
        splits = [(t.tree_.feature, t.tree_.threshold) for t in model.estimators_]
    else:
        splits = [
            (p[0].nodes["feature_idx"], p[0].nodes["num_threshold"]) for p in model._predictors
        ]
    values = []
    for features, thresholds in splits:
        for feature, threshold in zip(features, thresholds, strict=True):
            if feature < 0:
                continue
            single = np.float32(threshold)
            if family == "RandomForest":  # float32(x) is compared: the float32 neighbours
                beside = (
                    np.nextafter(threshold, np.inf),
                    np.nextafter(threshold, -np.inf),
                    float(single),
                    float(np.nextafter(single, np.float32(np.inf))),
                    float(np.nextafter(single, np.float32(-np.inf))),
                )
            else:  # x itself, beyond the thresholds' 1e-12 (relative) widening
                step = 4 * HIST_THRESHOLD_SLACK * max(abs(threshold), 1.0)
                beside = (threshold + step, threshold - step)
            for v in (threshold, *beside):
                row = X.iloc[len(values) % len(X)].to_numpy(copy=True)
                row[feature] = v
                values.append(row)
    rows = pd.DataFrame(values[:3000], columns=["a", "b"])
    _check(model, [InputColumn("a", "double"), InputColumn("b", "double")], rows)


def test_knn_imputer_ties_at_the_kth_neighbour_are_caught() -> None:
    """Integer columns make exact distance ties; which tied donor scikit-learn's argpartition
    keeps is not reproducible, so verification refuses the graph and says by how much."""
    from sklearn.impute import KNNImputer
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.integers(0, 3, 200) * 1.0, "b": rng.integers(0, 3, 200) * 1.0})
    frame["c"] = rng.normal(size=200)
    y = frame["c"] * 2 + frame["a"]
    rows = frame.copy()
    rows.loc[::2, "c"] = np.nan
    pipeline = Pipeline([("knn", KNNImputer(n_neighbors=3)), ("model", LinearRegression())])
    pipeline.fit(frame, y)
    inputs = [InputColumn(n, "double") for n in ("a", "b", "c")]
    verdict = compile_pipeline(pipeline, inputs, rows)
    assert verdict.status.startswith("fallback: max abs difference "), verdict.status
    assert verdict.status.endswith("exceeds tolerance 1e-06")
    assert verdict.model_bytes is None
    # without ties (continuous columns) the same graph agrees
    rows = mixed_frame(200, seed=5)[["a", "b"]]
    train = mixed_frame(200, seed=6)
    pipeline = Pipeline([("knn", KNNImputer(n_neighbors=7, weights="distance"))])
    pipeline.steps.append(("model", LinearRegression()))
    pipeline.fit(train[["a", "b"]], train["value"])
    _check(pipeline, [InputColumn("a", "double"), InputColumn("b", "double")], rows)


def test_a_step_without_converter_falls_back_with_its_name() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import SplineTransformer

    inputs = [InputColumn("a", "double"), InputColumn("b", "double")]
    X = TRAIN[["a", "b"]].fillna(0.0)
    pipeline = Pipeline([("spline", SplineTransformer()), ("model", LogisticRegression())])
    pipeline.fit(X, TRAIN["target"])
    verdict = compile_pipeline(pipeline, inputs, X)
    assert verdict.status.startswith("fallback: conversion failed: ")
    assert "SplineTransformer" in verdict.status
    assert verdict.model_bytes is None and verdict.max_abs_diff is None


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("target", ["target", "multi", "value"])
def test_nearest_neighbours_are_one_gemm_and_topk(weights, target) -> None:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    model = (KNeighborsRegressor if target == "value" else KNeighborsClassifier)(weights=weights)
    pipeline = Pipeline([("prep", build_recipe("basic", ROLES, TRAIN)), ("model", model)])
    pipeline.fit(TRAIN[FEATURES], TRAIN[target])
    graph = _check(pipeline, INPUTS, HELD_OUT[FEATURES])
    assert {"Gemm", "TopK"} <= _ops(graph) and "Scan" not in _ops(graph)


def test_two_class_svc_probabilities_are_libsvm_s_in_double() -> None:
    from sklearn.svm import SVC

    model = SVC(probability=True, random_state=0)
    pipeline = Pipeline([("prep", build_recipe("power", ROLES, TRAIN)), ("model", model)])
    pipeline.fit(TRAIN[FEATURES], TRAIN["target"])
    graph = _check(pipeline, INPUTS, HELD_OUT[FEATURES])
    assert "SVMClassifier" not in _ops(graph)  # onnxruntime's computes in float


@pytest.mark.parametrize("kernel", ["rbf", "poly"])
def test_multiclass_svc_votes_and_coupled_probabilities_in_double(kernel) -> None:
    """Three classes with string labels: one-vs-one votes and libsvm's coupling iterations
    (an ONNX Loop, each row stopping where libsvm stops), within 1e-6 in double."""
    from sklearn.svm import SVC

    labels = np.array(["low", "mid", "high"])
    model = SVC(kernel=kernel, probability=True, random_state=0)
    pipeline = Pipeline([("prep", build_recipe("power", ROLES, TRAIN)), ("model", model)])
    pipeline.fit(TRAIN[FEATURES], labels[TRAIN["multi"]])
    graph = _check(pipeline, INPUTS, HELD_OUT[FEATURES])
    assert "Loop" in _ops(graph) and "SVMClassifier" not in _ops(graph)
    verdict = compile_pipeline(pipeline, INPUTS, HELD_OUT[FEATURES])
    assert verdict.max_abs_diff < 1e-12  # double all the way (float32 would be ~1e-7)


def test_boosting_splits_on_repeated_values_survive_yeo_johnson(monkeypatch) -> None:
    """Rounded amounts repeat, so boosting splits sit exactly on training values; after the
    power recipe the graph's values differ from numpy's in the last bits. Without the
    thresholds' widening some rows go the other way; with it every row agrees."""
    from mlfactory.compile import _trees

    frame = mixed_frame(4000, seed=0)
    frame["b"] = (frame["b"] * 1000).round(0)
    roles = ColumnRoles(numeric=("a", "c"), categorical=("city",), boolean=("flag",), skewed=("b",))
    model = ensemble.HistGradientBoostingClassifier(max_iter=30, random_state=0)
    pipeline = Pipeline([("prep", build_recipe("power", roles, frame)), ("model", model)])
    pipeline.fit(frame[FEATURES], frame["target"])
    _check(pipeline, INPUTS, frame[FEATURES])
    monkeypatch.setattr(_trees, "HIST_THRESHOLD_SLACK", 0.0)
    verdict = compile_pipeline(pipeline, INPUTS, frame[FEATURES])
    assert verdict.status.startswith("fallback: ONNX labels differ"), verdict.status
