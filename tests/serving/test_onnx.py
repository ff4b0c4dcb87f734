"""ONNX: compiled in double and verified at promotion (within 1e-6), served by onnxruntime,
scikit-learn as the fallback. Every family and recipe: tests/compile."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _serving_helpers import TestClient, records

from mlfactory.datasets import load_dataset
from mlfactory.registry import load_model, promote
from mlfactory.serving import build_frame, create_app
from mlfactory.serving._onnx import ONNX_TOLERANCE, build_predictor, compile_onnx
from mlfactory.serving._service import INLINE_MAX_ROWS
from mlfactory.tracking import open_tracking
from mlfactory.training import train

KNN_SPEC = """
name = "credit-knn"
dataset = "credit"
preprocessing = "robust_knn"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "none"
"""


@pytest.fixture(scope="module")
def loaded(registered):
    return load_model(registered.settings, "credit")


def test_promotion_records_a_verified_graph(registered, loaded) -> None:
    tags = loaded.info.tags
    assert tags["onnx_status"] == "ok"
    assert 0.0 <= float(tags["onnx_max_abs_diff"]) <= ONNX_TOLERANCE
    assert int(tags["onnx_rows_checked"]) > 100
    client = open_tracking(registered.settings)
    artifact = tags["onnx_artifact"]  # content-addressed: onnx/<sha256[:16]>/model.onnx
    assert artifact == f"onnx/{tags['onnx_sha256'][:16]}/model.onnx"
    folder = artifact.rsplit("/", 1)[0]
    names = [a.path for a in client.list_artifacts(loaded.info.run_id, folder)]
    assert names == [artifact]


def test_onnx_scores_equal_sklearn_within_the_recorded_tolerance(registered, loaded) -> None:
    predictor = build_predictor(registered.settings, loaded, onnx=True)
    assert predictor.kind == "onnx" and "verified" in predictor.reason
    X = registered.X  # all rows, most never seen by the verification sample
    result = predictor.score(X)
    tolerance = float(loaded.info.tags["onnx_tolerance"])
    expected = registered.pipeline.predict_proba(X)
    assert np.max(np.abs(result.probabilities - expected)) <= tolerance
    assert result.predictions.tolist() == registered.pipeline.predict(X).tolist()
    assert result.classes == [0, 1]


def test_columns_feed_the_graph_exactly_as_the_frame_does(registered, loaded) -> None:
    """The ONNX path skips the DataFrame: same feed, same scores, nulls included."""
    predictor = build_predictor(registered.settings, loaded, onnx=True)
    X = registered.X.head(60).copy()
    X.iloc[::7, 0] = np.nan  # numeric nulls become NaN in both feeds
    raw = {name: [row[name] for row in records(X)] for name in X.columns}
    batch = build_frame(raw, loaded.inputs, max_rows=1000)
    assert "frame" not in batch.__dict__  # nothing has built the DataFrame yet
    from_columns = predictor.score_batch(batch)
    assert "frame" not in batch.__dict__  # ... and the ONNX path did not need it
    from_frame = predictor.score(batch.frame)
    np.testing.assert_array_equal(from_columns.probabilities, from_frame.probabilities)
    np.testing.assert_array_equal(from_columns.predictions, from_frame.predictions)
    np.testing.assert_allclose(
        from_columns.probabilities, registered.pipeline.predict_proba(X), atol=ONNX_TOLERANCE
    )


def test_boolean_nulls_in_columns_go_to_sklearn(registered, loaded) -> None:
    predictor = build_predictor(registered.settings, loaded, onnx=True)
    X = registered.X.head(4).copy()
    raw = {name: [row[name] for row in records(X)] for name in X.columns}
    raw["high_debt_ratio"] = [True, None, False, True]
    result = predictor.score_batch(build_frame(raw, loaded.inputs, max_rows=10))
    X["high_debt_ratio"] = pd.array(raw["high_debt_ratio"], dtype="boolean")
    np.testing.assert_allclose(
        result.probabilities, registered.pipeline.predict_proba(X), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("rows", [1, INLINE_MAX_ROWS + 44])
def test_invocations_on_the_loop_and_in_threads_answer_alike(registered, rows) -> None:
    """Small ONNX requests are scored on the event loop, big ones in threads: same answers."""
    app = create_app(registered.settings, "credit", log_predictions=False, onnx=True)
    X = registered.X.sample(rows, random_state=rows, replace=rows > len(registered.X))
    data = [list(row.values()) for row in records(X)]  # nulls as None
    body = {"dataframe_split": {"columns": list(X.columns), "data": data}}
    with TestClient(app) as client:
        service = app.state.service
        assert service.scores_inline(rows) is (rows <= INLINE_MAX_ROWS)
        answer = client.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == registered.pipeline.predict(X).tolist()


def test_boolean_nulls_are_scored_by_sklearn(registered, loaded) -> None:
    predictor = build_predictor(registered.settings, loaded, onnx=True)
    X = registered.X.head(5).copy()
    X["high_debt_ratio"] = pd.array([True, None, False, True, False], dtype="boolean")
    result = predictor.score(X)
    np.testing.assert_allclose(
        result.probabilities, registered.pipeline.predict_proba(X), rtol=0, atol=1e-12
    )


def test_service_reports_onnx_and_answers_like_the_pipeline(registered) -> None:
    app = create_app(registered.settings, "credit", log_predictions=False, onnx=True)
    X = registered.X.head(40)
    with TestClient(app) as client:
        model = client.get("/model").json()
        answer = client.post("/predict", json=records(X))
    assert model["inference"] == "onnx"
    assert "verified ONNX graph" in model["inference_reason"]
    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    assert [i["prediction"] for i in items] == registered.pipeline.predict(X).tolist()
    got = np.array([[i["probabilities"]["0"], i["probabilities"]["1"]] for i in items])
    assert np.max(np.abs(got - registered.pipeline.predict_proba(X))) <= ONNX_TOLERANCE


def test_robust_knn_compiles_and_serves_its_knn_imputer(registered) -> None:
    """robust_knn's distance-weighted KNNImputer has a double graph of its own now."""
    spec = registered.settings.home.parent / "credit-knn.toml"
    spec.write_text(KNN_SPEC)
    run = train(spec, registered.settings)
    info = promote(registered.settings, "credit-knn", run_id=run.run_id)
    assert info.tags["onnx_status"] == "ok", info.tags["onnx_status"]
    app = create_app(registered.settings, "credit-knn", log_predictions=False, onnx=True)
    X = load_dataset("credit", settings=registered.settings).X.head(30)
    with TestClient(app) as client:
        model = client.get("/model").json()
        answer = client.post("/predict", json=records(X))
    assert model["inference"] == "onnx", model["inference_reason"]
    pipeline = run.best.outcome.best_estimator
    items = answer.json()["predictions"]
    assert [i["prediction"] for i in items] == pipeline.predict(X).tolist()
    got = np.array([[i["probabilities"]["0"], i["probabilities"]["1"]] for i in items])
    np.testing.assert_allclose(got, pipeline.predict_proba(X), rtol=0, atol=ONNX_TOLERANCE)


def test_promotion_without_compilation_and_opt_out(registered, loaded) -> None:
    info = promote(
        registered.settings, "credit-plain", run_id=loaded.info.run_id, compile_onnx=False
    )
    assert "onnx_status" not in info.tags
    plain = load_model(registered.settings, "credit-plain")
    assert "no ONNX graph" in build_predictor(registered.settings, plain, onnx=True).reason
    assert build_predictor(registered.settings, loaded, onnx=False).kind == "sklearn"


def test_a_forest_compiles_exactly_in_double(registered) -> None:
    """A random forest's float32 graph flipped some probabilities; the double graph does not."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from mlfactory.preprocessing import build_recipe

    data = load_dataset("credit", settings=registered.settings)
    pipe = Pipeline(
        [
            ("prep", build_recipe("basic", data.roles, data.X)),
            ("model", RandomForestClassifier(n_estimators=30, random_state=0)),
        ]
    ).fit(data.X, data.y)
    inputs = load_model(registered.settings, "credit").inputs
    verdict = compile_onnx(pipe, inputs, data.X)
    assert verdict.status == "ok"
    assert verdict.max_abs_diff is not None and verdict.max_abs_diff <= ONNX_TOLERANCE == 1e-6
    assert verdict.model_bytes is not None
