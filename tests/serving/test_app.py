"""The service in process (FastAPI TestClient): endpoints, formats, validation, auth, metrics."""

import numpy as np
import pytest
from _serving_helpers import TestClient, records

from mlfactory.serving import create_app
from mlfactory.settings import load_settings


@pytest.fixture(scope="module")
def app_client(registered):
    app = create_app(registered.settings, "credit", max_batch_rows=50, log_predictions=False)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def sample(registered):
    X = registered.X.head(25)
    proba = registered.pipeline.predict_proba(X)
    return X, registered.pipeline.predict(X).tolist(), proba


def test_health_ready_model(app_client, registered):
    assert app_client.get("/health").json() == {"status": "alive"}
    assert app_client.get("/ready").json() == {"status": "ready"}
    model = app_client.get("/model").json()
    assert (model["name"], model["version"], model["alias"]) == ("credit", "1", "champion")
    assert model["task"] == "classification" and model["classes"] == [0, 1]
    assert model["inference"] == "sklearn"
    assert model["metrics"]["test_roc_auc"] > 0.5
    assert [field["name"] for field in model["inputs"]] == list(registered.X.columns)
    types = {field["name"]: field["type"] for field in model["inputs"]}
    assert types["age"] == "double" and types["high_debt_ratio"] == "boolean"


def test_invocations_every_format_matches_the_pipeline(app_client, sample):
    X, expected, _ = sample
    rows = records(X)
    split = {"columns": list(X.columns), "data": [list(r.values()) for r in rows]}
    payloads = [
        {"dataframe_split": split},
        {"dataframe_records": rows},
        {"instances": rows},
        {"inputs": {c: [r[c] for r in rows] for c in X.columns}},
    ]
    for payload in payloads:
        response = app_client.post("/invocations", json=payload)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": expected}
        assert float(response.headers["X-Model-Time-Ms"]) > 0
        assert len(response.headers["X-Request-Id"]) == 32


def test_predict_one_record_or_a_list_returns_class_probabilities_version(app_client, sample):
    X, expected, proba = sample
    rows = records(X)
    one = app_client.post("/predict", json=rows[0])
    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["model_name"], body["model_version"]) == ("credit", "1")
    assert body["request_id"] == one.headers["X-Request-Id"]
    assert body["predictions"][0]["prediction"] == expected[0]
    assert body["predictions"][0]["probabilities"]["1"] == pytest.approx(proba[0, 1])
    many = app_client.post("/predict", json=rows).json()["predictions"]
    assert [p["prediction"] for p in many] == expected
    got = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in many])
    np.testing.assert_allclose(got, proba, rtol=1e-12)


def test_forgiving_types_and_nulls(app_client, sample):
    X = sample[0]
    row = records(X.head(1))[0]
    forgiving = {k: (str(v) if isinstance(v, float) else v) for k, v in row.items()}  # "3.5"
    forgiving["num_dependents"] = None  # imputed
    forgiving["num_open_credit_loans"] = int(row["num_open_credit_loans"])  # int for double
    for path in ("/predict", "/invocations"):
        body = forgiving if path == "/predict" else {"dataframe_records": [forgiving]}
        response = app_client.post(path, json=body)
        assert response.status_code == 200, response.text
    nulls = dict.fromkeys(row)  # everything missing: the pipeline imputes every feature
    assert app_client.post("/predict", json=nulls).status_code == 200


def test_extra_columns_are_ignored_with_a_warning_header(app_client, sample):
    X = sample[0]
    row = {**records(X.head(1))[0], "customer_id": 17}
    for path, body in (("/predict", row), ("/invocations", {"dataframe_records": [row]})):
        response = app_client.post(path, json=body)
        assert response.status_code == 200
        assert "customer_id" in response.headers["X-Mlfactory-Warning"]
    clean = app_client.post("/predict", json=records(X.head(1))[0])
    assert "X-Mlfactory-Warning" not in clean.headers


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_bad_input_is_4xx_naming_the_field(app_client, sample, path):
    X, _, _ = sample
    row = records(X.head(1))[0]

    def post(rows):
        body = rows if path == "/predict" else {"dataframe_records": rows}
        return app_client.post(path, json=body)

    wrong = post([row, {**row, "age": "abc"}])
    assert wrong.status_code == 422
    assert "'age'" in wrong.json()["message"] and "number (double)" in wrong.json()["message"]
    missing = post([{k: v for k, v in row.items() if k != "debt_ratio"}])
    assert missing.status_code == 422 and "'debt_ratio'" in missing.json()["message"]
    assert post([]).status_code == 400
    too_many = post([row] * 51)
    assert too_many.status_code == 413 and "limit of 50" in too_many.json()["message"]
    json_type = {"content-type": "application/json"}
    broken = app_client.post(path, content=b'{"age": ', headers=json_type)
    assert broken.status_code == 400 and "JSON" in broken.json()["message"]
    text = app_client.post(path, content=b"age=3", headers={"content-type": "text/plain"})
    assert 400 <= text.status_code < 500


def test_openapi_lists_every_feature_with_its_type(app_client, registered):
    spec = app_client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["CreditRecord"]
    assert set(record["properties"]) == set(registered.X.columns)
    age = record["properties"]["age"]
    assert {"type": "number"} in age["anyOf"] and {"type": "null"} in age["anyOf"]
    flag = record["properties"]["high_debt_ratio"]
    assert {"type": "boolean"} in flag["anyOf"]
    assert "/predict" in spec["paths"] and "/invocations" in spec["paths"]


def test_metrics_count_requests_rows_and_classes(registered, sample):
    X, expected, _ = sample
    app = create_app(registered.settings, "credit", log_predictions=False)
    with TestClient(app) as client:
        client.post("/invocations", json={"dataframe_records": records(X)})
        client.post("/predict", json={"age": "abc"})
        text = client.get("/metrics").text
    assert 'mlfactory_requests_total{endpoint="/invocations",status="200"} 1' in text
    assert 'mlfactory_requests_total{endpoint="/predict",status="422"} 1' in text
    assert f"mlfactory_rows_scored_total {len(X)}" in text
    for label in (0, 1):
        count = expected.count(label)
        if count:
            assert f'mlfactory_predictions_total{{class="{label}"}} {count}' in text
    assert 'mlfactory_request_duration_seconds_count{endpoint="/invocations"} 1' in text
    assert 'mlfactory_model_info{name="credit",version="1",inference="sklearn"} 1' in text
    assert "mlfactory_prediction_log_dropped_total 0" in text


def test_api_key_guards_everything_but_health(registered, sample):
    settings = load_settings(home=registered.settings.home, api_key="s3cret-key")
    app = create_app(settings, "credit", log_predictions=False)
    row = records(sample[0].head(1))[0]
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        guarded = [("get", "/model"), ("get", "/metrics"), ("get", "/docs"), ("get", "/ready")]
        for method, path in [*guarded, ("post", "/reload"), ("post", "/predict")]:
            response = getattr(client, method)(path)
            assert response.status_code == 401, path
            assert response.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/model", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        ok = client.post("/predict", json=row, headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200
        assert "s3cret" not in client.get("/health").text


def test_invocations_accepts_csv_like_mlflow(app_client, sample):
    X, expected, _ = sample
    csv = {"content-type": "text/csv"}
    response = app_client.post("/invocations", content=X.to_csv(index=False), headers=csv)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}
    header_only = ",".join(X.columns) + "\n"
    assert app_client.post("/invocations", content=header_only, headers=csv).status_code == 400
    assert app_client.post("/invocations", content=b"", headers=csv).status_code == 400


def test_oversized_body_is_413_before_parsing(registered):
    app = create_app(registered.settings, "credit", max_body_bytes=1000, log_predictions=False)
    with TestClient(app) as client:
        big = client.post("/invocations", json={"inputs": {"age": [1.0] * 500}})
        assert big.status_code == 413 and "exceeds 1000 bytes" in big.json()["message"]
        assert client.get("/health").status_code == 200
