"""Property-based fuzzing of the OpenAPI spec: no generated request makes the service answer 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from mlfactory.serving import create_app

OPERATIONS = [("/predict", "POST"), ("/invocations", "POST"), ("/model", "GET")]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_generated_request_gets_a_5xx(registered, serve, path, method):
    app = create_app(registered.settings, "credit", max_batch_rows=20, log_predictions=False)
    server = serve(app)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operation = schema[path][method]
    seen: list[int] = []

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call(base_url=server.url, timeout=30)
        seen.append(response.status_code)
        assert response.status_code < 500, (case.body, response.text)

    check()
    assert seen and all(code < 500 for code in seen)
    if path == "/predict":
        assert 200 in seen and any(400 <= code < 500 for code in seen)  # both kinds explored
