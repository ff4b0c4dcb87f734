"""Promotion compiles every zoo family and every recipe; the service scores with the graph.

Each model is trained by ``mlfactory train`` and promoted; the registry compiles and verifies it
on the run's reference sample. Here the served answers are compared again with the fitted
pipeline on rows no model saw, through the service's own request path.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

import httpx
import numpy as np
import pandas as pd
import pytest
from _compile_data import PROMOTED

from mlfactory.compile import TOLERANCE
from mlfactory.registry import load_model, promote
from mlfactory.serving import BackgroundServer, build_frame, create_app
from mlfactory.serving._onnx import build_predictor
from mlfactory.tracking import open_tracking


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict(orient="records")
    ]


def _columns(frame: pd.DataFrame) -> dict[str, list]:
    rows = _records(frame)
    return {name: [row[name] for row in rows] for name in frame.columns}


@pytest.mark.parametrize("name", PROMOTED)
def test_promotion_verifies_a_double_graph_that_serving_uses(promoted, name) -> None:
    tags = promoted.tags[name]
    assert tags["onnx_status"] == "ok", tags["onnx_status"]
    assert float(tags["onnx_tolerance"]) == TOLERANCE == 1e-6
    assert float(tags["onnx_max_abs_diff"]) <= TOLERANCE
    assert tags["onnx_precision"] == "double"
    loaded = load_model(promoted.settings, name)
    predictor = build_predictor(promoted.settings, loaded, onnx=True)
    assert predictor.kind == "onnx", predictor.reason
    batch = build_frame(_columns(promoted.held_out), loaded.inputs, max_rows=1000)
    result = predictor.score_batch(batch)  # the graph, fed from the request's columns
    pipeline = promoted.pipelines[name]
    expected = pipeline.predict(batch.frame)
    if name.startswith("reg-"):
        np.testing.assert_allclose(result.predictions, expected, rtol=0, atol=TOLERANCE)
        assert result.probabilities is None
    else:
        assert result.predictions.tolist() == expected.tolist()
        np.testing.assert_allclose(
            result.probabilities, pipeline.predict_proba(batch.frame), rtol=0, atol=TOLERANCE
        )


def test_a_real_server_scores_a_forest_with_its_graph(promoted) -> None:
    name = "cls-RandomForest"
    app = create_app(promoted.settings, name, log_predictions=False, onnx=True)
    rows = promoted.held_out.head(60)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        model = http.get("/model").json()
        answer = http.post("/predict", json=_records(rows))
        split = http.post(
            "/invocations",
            json={"dataframe_split": {"columns": list(rows.columns), "data": [
                list(r.values()) for r in _records(rows)
            ]}},
        )  # fmt: skip
    assert model["inference"] == "onnx", model["inference_reason"]
    assert "verified ONNX graph" in model["inference_reason"]
    assert answer.status_code == 200 and split.status_code == 200, (answer.text, split.text)
    frame = build_frame(_columns(rows), load_model(promoted.settings, name).inputs, 1000).frame
    pipeline = promoted.pipelines[name]
    items = answer.json()["predictions"]
    assert [i["prediction"] for i in items] == pipeline.predict(frame).tolist()
    assert split.json()["predictions"] == pipeline.predict(frame).tolist()
    got = np.array([[i["probabilities"]["0"], i["probabilities"]["1"]] for i in items])
    np.testing.assert_allclose(got, pipeline.predict_proba(frame), rtol=0, atol=TOLERANCE)


def test_a_pipeline_that_cannot_compile_is_served_by_sklearn_with_the_reason(
    promoted, monkeypatch
) -> None:
    """The converter's own words reach the version's tags and ``GET /model``."""
    from mlfactory.compile import _compile

    def gap(model, inputs):
        raise NotImplementedError("no converter for SplineTransformer")

    monkeypatch.setattr(_compile, "convert", gap)
    run_id = load_model(promoted.settings, "cls-KNN").info.run_id
    info = promote(promoted.settings, "no-graph", run_id=run_id)
    monkeypatch.undo()
    status = info.tags["onnx_status"]
    assert status == "fallback: conversion failed: no converter for SplineTransformer"
    assert "onnx_artifact" not in info.tags and "onnx_sha256" not in info.tags
    app = create_app(promoted.settings, "no-graph", log_predictions=False, onnx=True)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        model = http.get("/model").json()
        answer = http.post("/predict", json=_records(promoted.held_out.head(5)))
    assert model["inference"] == "sklearn"
    assert model["inference_reason"] == status
    assert answer.status_code == 200, answer.text


def test_a_graph_that_disagrees_is_not_recorded(promoted, monkeypatch) -> None:
    """Verification compares with scikit-learn: another model's graph fails, promotion goes on."""
    from mlfactory.compile import _compile

    other = promoted.pipelines["cls-LogisticRegression"]
    real = _compile.convert
    monkeypatch.setattr(_compile, "convert", lambda model, inputs: real(other, inputs))
    run_id = load_model(promoted.settings, "cls-NaiveBayes").info.run_id
    info = promote(promoted.settings, "wrong-graph", run_id=run_id)
    monkeypatch.undo()
    status = info.tags["onnx_status"]
    assert status.startswith("fallback: "), status
    assert "labels differ" in status or "exceeds tolerance 1e-06" in status
    assert float(info.tags["onnx_max_abs_diff"]) > TOLERANCE
    assert "onnx_artifact" not in info.tags
    loaded = load_model(promoted.settings, "wrong-graph")
    assert build_predictor(promoted.settings, loaded).kind == "sklearn"


def test_a_tampered_tree_graph_is_refused(promoted) -> None:
    loaded = load_model(promoted.settings, "reg-HistGradientBoosting")
    client = open_tracking(promoted.settings)
    root = unquote(urlparse(client.get_run(loaded.info.run_id).info.artifact_uri).path)
    graph = __import__("pathlib").Path(root) / loaded.info.tags["onnx_artifact"]
    original = graph.read_bytes()
    try:
        graph.write_bytes(original.replace(b"TreeEnsemble", b"TreeEnsembIe", 1))
        predictor = build_predictor(promoted.settings, loaded)
        assert predictor.kind == "sklearn"
        assert "does not match its recorded SHA-256" in predictor.reason
    finally:
        graph.write_bytes(original)
    assert build_predictor(promoted.settings, loaded).kind == "onnx"
