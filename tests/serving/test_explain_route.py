"""POST /explain: SHAP contributions of one record from the served champion."""

import numpy as np
import pytest
from _serving_helpers import TestClient, records

from mlfactory.serving import create_app


@pytest.fixture(scope="module")
def app_client(registered):
    app = create_app(registered.settings, "credit", log_predictions=False)
    with TestClient(app) as client:
        yield client


def test_explain_returns_additive_top_k_contributions(app_client, registered):
    row = records(registered.X.head(1))[0]
    response = app_client.post("/explain", json=row, params={"top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"]) == ("credit", "1")
    assert body["explainer"] == "linear" and body["scale"] == "log-odds"
    assert len(body["contributions"]) == 3
    contributions = [c["contribution"] for c in body["contributions"]]
    assert contributions == sorted(contributions, key=abs, reverse=True)
    total = body["base_value"] + sum(contributions) + body["rest"]
    assert total == pytest.approx(body["model_output"], abs=1e-6)
    # the model's own log-odds for that row
    proba = registered.pipeline.predict_proba(registered.X.head(1))[0, 1]
    assert body["model_output"] == pytest.approx(np.log(proba / (1 - proba)), abs=1e-6)


def test_explain_bad_input_is_a_4xx(app_client, registered):
    row = records(registered.X.head(1))[0]
    assert app_client.post("/explain", json={**row, "age": "old"}).status_code == 422
    assert app_client.post("/explain", json=row, params={"top_k": 0}).status_code == 422
    assert app_client.post("/explain", json=[row, row]).status_code == 422
