"""MLflow's scoring protocol on a real mlfactory server: probes, error codes, content types.

The side-by-side comparison with ``mlflow models serve`` is test_mlflow_conformance.py.
"""

import io
import json

import numpy as np
import pytest
from _serving_helpers import client, records

from mlfactory.serving import create_app
from mlfactory.settings import load_settings

INVALID = "INVALID_PARAMETER_VALUE"
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


@pytest.fixture
def server(registered, serve):
    return serve(create_app(registered.settings, "credit", log_predictions=False))


@pytest.mark.filterwarnings("ignore:Any type hint is inferred:UserWarning")  # mlflow's own types
def test_mlflow_client_waits_for_the_server_and_reads_its_version(registered, server):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    from mlflow.version import VERSION

    mlflow_client = ScoringServerClient("127.0.0.1", server.port)
    mlflow_client.wait_server_ready(timeout=10)  # GET /ping
    assert mlflow_client.get_version() == VERSION  # GET /version, as mlflow models serve
    X = registered.X.head(25)
    predictions = mlflow_client.invoke(X).get_predictions(predictions_format="ndarray")
    np.testing.assert_array_equal(predictions, registered.pipeline.predict(X))


def test_every_error_body_has_mlflow_error_code_and_our_fields(registered, server):
    row = records(registered.X.head(1))[0]
    with client(server) as http:
        text = {"Content-Type": "text/plain"}
        bad = {**row, "age": "x"}
        cases = [
            (http.post("/invocations", content=b"not json"), 400, "BAD_REQUEST"),
            (http.post("/invocations", json={"nope": 1}), 400, "BAD_REQUEST"),
            (http.post("/invocations", json={"dataframe_records": []}), 400, INVALID),
            (http.post("/invocations", json={"inputs": [bad]}), 422, INVALID),
            (http.post("/predict", json=bad), 422, INVALID),
            (http.post("/invocations", content=b"{}", headers=text), 415, "BAD_REQUEST"),
            (http.get("/no/such/route"), 404, "ENDPOINT_NOT_FOUND"),
            (http.get("/invocations"), 405, "BAD_REQUEST"),
        ]
    for response, status, code in cases:
        body = response.json()
        assert (response.status_code, body.get("error_code")) == (status, code), body
        assert body["error"] and body["message"], body


CONTENT_TYPES = [  # (Content-Type, status): as mlflow models serve answers them
    ("application/json; charset=UTF-8", 200),
    ('application/json; charset="utf-8"', 200),
    ("application/json;", 200),
    ("text/csv; charset=utf-8", 200),
    ("application/json; charset=latin-1", 415),
    ("application/json; charset=utf-16", 415),
    ("text/csv; charset=iso-8859-1", 415),
    ("application/json; something=something", 415),
    ("application/json; charset=utf-8; boundary=x", 415),
    ("application/x-parquet", 415),
    ("application/vnd.apache.parquet", 415),
]


def _body(frame, content_type: str) -> bytes:
    if content_type.startswith("text/csv"):
        return frame.to_csv(index=False).encode()
    if "parquet" in content_type:
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        return buffer.getvalue()
    return ('{"dataframe_split": ' + frame.to_json(orient="split", index=False) + "}").encode()


def test_content_types_and_their_parameters_are_checked_as_mlflow_does(registered, server):
    frame = registered.X.head(3)
    with client(server) as http:
        answers = {
            content_type: http.post(
                "/invocations",
                content=_body(frame, content_type),
                headers={"Content-Type": content_type},
            )
            for content_type, _ in CONTENT_TYPES
        }
    assert {k: r.status_code for k, r in answers.items()} == dict(CONTENT_TYPES)
    for content_type, response in answers.items():
        if response.status_code == 415:
            assert response.json()["error_code"] == "BAD_REQUEST"
            assert content_type[:30] in response.json()["message"]


def test_parquet_refusal_says_why_and_what_to_send(server):
    with client(server) as http:
        response = http.post(
            "/invocations",
            content=b"PAR1",
            headers={"Content-Type": "application/vnd.apache.parquet"},
        )
    assert response.status_code == 415
    assert "Parquet bodies are not accepted" in response.json()["message"]
    assert "application/json or text/csv" in response.json()["message"]


def test_split_without_columns_is_refused_for_a_many_column_model(registered, server):
    # Positional mapping scored swapped values as the wrong features: now a 400 naming the fix.
    frame = registered.X.head(2)
    data = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    with client(server) as http:
        response = http.post("/invocations", json={"dataframe_split": {"data": data}})
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert 'needs "columns": the model has 13 input columns' in body["message"]


def test_ping_is_public_and_version_needs_the_key(registered, serve):
    settings = load_settings(home=registered.settings.home, api_key="s3cret-key-0123456789")
    server = serve(create_app(settings, "credit", log_predictions=False))
    with client(server) as http:
        assert http.get("/ping").json() == {"status": "ready"}
        assert http.get("/version").status_code == 401
        keyed = http.get("/version", headers={"X-API-Key": "s3cret-key-0123456789"})
    assert keyed.status_code == 200 and keyed.headers["content-type"].startswith("text/plain")


def test_typed_routes_follow_the_same_content_type_parameter_rule(registered, server):
    body = json.dumps(records(registered.X.head(1))).encode()
    with client(server) as http:
        statuses = {
            content_type: http.post(
                "/predict", content=body, headers={"Content-Type": content_type}
            ).status_code
            for content_type in (
                "application/json; charset=utf-8",
                "application/json; charset=latin-1",
                "application/json; version=2",
            )
        }
    assert list(statuses.values()) == [200, 415, 415], statuses
