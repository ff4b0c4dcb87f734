"""Micro-batching: concurrent requests share model calls, answers and errors stay per request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _serving_helpers import client, records

from mlfactory.exceptions import ConfigError
from mlfactory.registry import load_model
from mlfactory.serving import SklearnPredictor, create_app
from mlfactory.serving._microbatch import MicroBatcher


@pytest.fixture(scope="module")
def predictor(registered):
    return SklearnPredictor(load_model(registered.settings, "credit"))


def test_batched_threads_get_their_own_rows(registered, predictor) -> None:
    batcher = MicroBatcher(max_rows=64, max_wait_ms=50)
    batcher.start()
    frames = [registered.X.iloc[i : i + 1 + i % 3] for i in range(24)]
    try:
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda f: batcher.score(predictor, f), frames))
    finally:
        batcher.close()
    assert batcher.batches >= 1  # some requests really shared a call
    for frame, result in zip(frames, results, strict=True):
        alone = predictor.score(frame)
        assert result.predictions.tolist() == alone.predictions.tolist()
        np.testing.assert_allclose(result.probabilities, alone.probabilities, rtol=0, atol=1e-12)


def test_a_failing_request_does_not_fail_the_others(registered, predictor) -> None:
    """Same dtypes (object 'age'), so they batch; the combined call fails on 'abc'."""
    good = [registered.X.iloc[i : i + 2].astype({"age": object}) for i in range(0, 16, 2)]
    bad = registered.X.iloc[:1].astype({"age": object})
    bad.loc[bad.index[0], "age"] = "abc"
    batcher = MicroBatcher(max_rows=64, max_wait_ms=50)
    batcher.start()

    def run(frame):
        try:
            return batcher.score(predictor, frame)
        except ValueError as exc:
            return exc

    try:
        with ThreadPoolExecutor(9) as pool:
            results = list(pool.map(run, [*good[:4], bad, *good[4:]]))
    finally:
        batcher.close()
    assert isinstance(results[4], ValueError)
    for frame, result in zip([*good[:4], *good[4:]], results[:4] + results[5:], strict=True):
        expected = registered.pipeline.predict_proba(frame.astype({"age": float}))
        np.testing.assert_allclose(result.probabilities, expected, rtol=0, atol=1e-12)


def test_server_under_concurrent_load_matches_unbatched(registered, serve) -> None:
    app = create_app(
        registered.settings,
        "credit",
        log_predictions=False,
        batch_max_size=32,
        batch_max_wait_ms=5,
    )
    server = serve(app)
    rows = records(registered.X.head(48))
    bodies = [rows[i : i + 1 + i % 2] for i in range(0, 48, 2)]
    bodies[7] = [{**bodies[7][0], "age": "not a number"}]  # invalid: 422 for this one only

    def post(body):
        with client(server) as http:
            return http.post("/predict", json=body)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, bodies))
    for i, (body, answer) in enumerate(zip(bodies, answers, strict=True)):
        if i == 7:
            assert answer.status_code == 422 and "'age'" in answer.text
            continue
        assert answer.status_code == 200, answer.text
        X = registered.X.iloc[[rows.index(r) for r in body]]
        items = answer.json()["predictions"]
        assert [p["prediction"] for p in items] == registered.pipeline.predict(X).tolist()
        got = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in items])
        np.testing.assert_allclose(got, registered.pipeline.predict_proba(X), rtol=0, atol=1e-12)


def test_invalid_batch_options() -> None:
    with pytest.raises(ConfigError, match="--batch-max-size"):
        create_app(None, "credit", batch_max_size=-1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rows >= 2"):
        MicroBatcher(max_rows=1)


def test_by_default_only_the_sklearn_path_is_micro_batched(registered, serve) -> None:
    """Left at its default, micro-batching serves the scikit-learn path (what queues while a
    call runs is scored together, nobody waits for company) and stays off for ONNX."""
    sklearn_app = create_app(registered.settings, "credit", log_predictions=False, onnx=False)
    onnx_app = create_app(registered.settings, "credit", log_predictions=False, onnx=True)
    off_app = create_app(
        registered.settings, "credit", log_predictions=False, onnx=False, batch_max_size=0
    )
    servers = [serve(app) for app in (sklearn_app, onnx_app, off_app)]
    sklearn_service, onnx_service, off_service = (
        app.state.service for app in (sklearn_app, onnx_app, off_app)
    )
    assert sklearn_service.predictor.kind == "sklearn"
    assert sklearn_service.batcher is not None and sklearn_service.batcher.max_wait_s == 0.0
    assert sklearn_service._batched(sklearn_service.predictor)
    assert onnx_service.predictor.kind == "onnx"
    assert not onnx_service._batched(onnx_service.predictor)
    assert onnx_service.scores_inline(1)  # the graph still scores small requests on the loop
    assert off_service.batcher is None
    rows = records(registered.X.head(64))

    def post(args):
        server, row = args
        with client(server) as http:
            return http.post("/predict", json=[row])

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, [(servers[0], row) for row in rows]))
    assert all(answer.status_code == 200 for answer in answers)
    got = [answer.json()["predictions"][0]["prediction"] for answer in answers]
    assert got == registered.pipeline.predict(registered.X.head(64)).tolist()
    assert sklearn_service.batcher.batches >= 1  # concurrent requests shared calls


def test_a_lone_request_does_not_wait_with_no_wait(registered, predictor) -> None:
    batcher = MicroBatcher(max_rows=64, max_wait_ms=0.0)
    batcher.start()
    try:
        frame = registered.X.head(3)
        result = batcher.score(predictor, frame)
    finally:
        batcher.close()
    assert batcher.batches == 0  # scored alone, at once
    np.testing.assert_allclose(
        result.probabilities, registered.pipeline.predict_proba(frame), rtol=0, atol=1e-12
    )


def test_validated_requests_are_joined_into_one_frame(registered, predictor) -> None:
    """Requests queue their typed columns; the scoring thread builds one DataFrame for all."""
    from mlfactory.serving import build_frame

    inputs = predictor.loaded.inputs
    frames = [registered.X.iloc[i : i + 1 + i % 3] for i in range(24)]
    batches = []
    for frame in frames:
        rows = records(frame)
        raw = {c.name: [row[c.name] for row in rows] for c in inputs}
        batches.append(build_frame(raw, inputs, max_rows=100))
    batcher = MicroBatcher(max_rows=64, max_wait_ms=50)
    batcher.start()
    try:
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda b: batcher.score_batch(predictor, b), batches))
    finally:
        batcher.close()
    assert batcher.batches >= 1
    assert not any("frame" in batch.__dict__ for batch in batches)  # no per-request DataFrame
    for frame, result in zip(frames, results, strict=True):
        assert result.predictions.tolist() == registered.pipeline.predict(frame).tolist()
        np.testing.assert_allclose(
            result.probabilities, registered.pipeline.predict_proba(frame), rtol=0, atol=1e-12
        )
