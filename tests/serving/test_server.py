"""A real uvicorn server: MLflow's own client, the prediction log, reload, the secure bind."""

import threading
import time

import numpy as np
import pytest
import sqlalchemy as sa
from _serving_helpers import client, free_port, records
from typer.testing import CliRunner

from mlfactory.cli._common import MlfactoryGroup
from mlfactory.cli._serve import serve_command
from mlfactory.db import get_engine
from mlfactory.exceptions import ConfigError
from mlfactory.prediction_log import PREDICTION_LOG, read_prediction_log
from mlfactory.registry import promote
from mlfactory.serving import check_bind, create_app
from mlfactory.settings import load_settings


@pytest.mark.filterwarnings("ignore:Any type hint is inferred:UserWarning")  # mlflow's own types
def test_mlflow_client_gets_the_in_process_predictions(registered, serve):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    server = serve(create_app(registered.settings, "credit", log_predictions=False))
    X = registered.X.head(40)  # has NaN incomes: sent as MLflow's client sends them
    mlflow_client = ScoringServerClient("127.0.0.1", server.port)
    response = mlflow_client.invoke(X)
    np.testing.assert_array_equal(
        response.get_predictions(predictions_format="ndarray"), registered.pipeline.predict(X)
    )


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _check_log(registered, serve, db_url):
    app = create_app(registered.settings, "credit", log_db_url=db_url, log_flush_interval_s=0.1)
    server = serve(app)
    X = registered.X.head(7)
    with client(server) as http:
        first = http.post("/invocations", json={"dataframe_records": records(X.head(5))})
        second = http.post("/predict", json=records(X.tail(2)))
        assert first.status_code == second.status_code == 200
    engine = get_engine(db_url)
    assert _wait_for(lambda: len(read_prediction_log(engine, "credit")) == 7)
    log = read_prediction_log(engine, "credit")
    ids = [first.headers["X-Request-Id"], second.headers["X-Request-Id"]]
    assert log["request_id"].tolist() == [ids[0]] * 5 + [ids[1]] * 2
    assert log["model_version"].eq("1").all()
    assert log["prediction"].tolist() == registered.pipeline.predict(X).tolist()
    np.testing.assert_allclose(log["age"].to_numpy(float), X["age"].to_numpy(float))
    assert log["monthly_income"].isna().tolist() == X["monthly_income"].isna().tolist()
    assert log["row_index"].tolist() == [0, 1, 2, 3, 4, 0, 1]
    with engine.connect() as connection:
        table = PREDICTION_LOG  # one row per request, records column by column
        query = sa.select(
            table.c.records, table.c.probabilities, table.c.latency_ms, table.c.inputs
        )
        rows = connection.execute(query.order_by(table.c.id)).all()
    assert [row.records for row in rows] == [5, 2]
    probabilities, latency, inputs = rows[0].probabilities, rows[0].latency_ms, rows[0].inputs
    np.testing.assert_allclose(
        np.array(probabilities["0"]) + np.array(probabilities["1"]), 1.0, rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        probabilities["1"], registered.pipeline.predict_proba(X.head(5))[:, 1], atol=1e-4
    )
    assert latency > 0 and set(inputs) == set(X.columns)
    assert all(len(values) == 5 for values in inputs.values())


def test_prediction_log_in_sqlite(registered, serve, tmp_path):
    _check_log(registered, serve, f"sqlite:///{tmp_path / 'log.db'}")


@pytest.mark.postgres
def test_prediction_log_in_postgresql(registered, serve, postgres_url):
    _check_log(registered, serve, postgres_url)


def test_unreachable_log_database_drops_and_keeps_serving(registered, serve):
    dead = f"postgresql+psycopg://nobody:pw@127.0.0.1:{free_port()}/nothing"
    app = create_app(registered.settings, "credit", log_db_url=dead, log_flush_interval_s=0.1)
    server = serve(app)
    with client(server) as http:
        for _ in range(3):
            response = http.post("/predict", json=records(registered.X.head(4)))
            assert response.status_code == 200
        assert _wait_for(
            lambda: "mlfactory_prediction_log_dropped_total 12" in http.get("/metrics").text
        )
        assert http.get("/ready").status_code == 200


def test_log_is_flushed_at_shutdown(registered, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'flush.db'}"
    app = create_app(registered.settings, "credit", log_db_url=db_url, log_flush_interval_s=60)
    from _serving_helpers import ThreadedServer

    with ThreadedServer(app) as server, client(server) as http:
        assert http.post("/predict", json=records(registered.X.head(3))).status_code == 200
    assert len(read_prediction_log(get_engine(db_url), "credit")) == 3  # written on shutdown


def test_reload_swaps_versions_without_failing_requests(registered, serve):
    settings = registered.settings
    promote(settings, "credit-reload", run_id=registered.run_id)
    server = serve(create_app(settings, "credit-reload", log_predictions=False))
    body = records(registered.X.head(20))
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with client(server) as http:
            while not stop.is_set():
                statuses.append(http.post("/predict", json=body).status_code)

    with client(server) as http:
        assert http.get("/model").json()["version"] == "1"
        assert http.post("/reload").json() == {
            "previous_version": "1", "version": "1", "changed": False
        }  # fmt: skip
        promote(settings, "credit-reload", run_id=registered.run_id)  # version 2 is champion
        worker = threading.Thread(target=load)
        worker.start()
        try:
            reloaded = http.post("/reload")
            time.sleep(0.3)
        finally:
            stop.set()
            worker.join()
        assert reloaded.json() == {"previous_version": "1", "version": "2", "changed": True}
        assert http.get("/model").json()["version"] == "2"
        assert http.post("/predict", json=body).json()["model_version"] == "2"
        assert 'mlfactory_model_info{name="credit-reload",version="2"' in http.get("/metrics").text
    assert statuses and set(statuses) == {200}


def test_reload_interval_polls_the_alias(registered, serve):
    settings = registered.settings
    promote(settings, "credit-poll", run_id=registered.run_id)
    server = serve(
        create_app(settings, "credit-poll", reload_interval_s=0.3, log_predictions=False)
    )
    promote(settings, "credit-poll", run_id=registered.run_id)
    with client(server) as http:
        assert _wait_for(lambda: http.get("/model").json()["version"] == "2")


def test_binding_beyond_loopback_needs_an_api_key(registered):
    settings = registered.settings
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(settings, host)
    with pytest.raises(ConfigError, match=r"refusing to bind 0\.0\.0\.0: .* MLFACTORY_API_KEY"):
        check_bind(settings, "0.0.0.0")
    check_bind(load_settings(home=settings.home, api_key="k" * 16), "0.0.0.0")  # 16+ characters


def test_cli_refuses_public_bind_without_key_exit_2(registered, monkeypatch):
    import typer

    app = typer.Typer(cls=MlfactoryGroup)
    app.command("serve")(serve_command)
    app.command("noop")(lambda: None)
    monkeypatch.setenv("MLFACTORY_HOME", str(registered.settings.home))
    result = CliRunner().invoke(app, ["serve", "credit", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to bind 0.0.0.0" in result.output
    missing = CliRunner().invoke(app, ["serve", "absent", "--port", str(free_port())])
    assert missing.exit_code == 1 and "registered model 'absent' not found" in missing.output


def test_cli_a_port_it_cannot_listen_on_is_one_line_exit_2(registered, monkeypatch):
    """uvicorn printed its own ``ERROR:`` line after the banner and exited 3 (the code of an
    unreachable database); a port above 65535 served on another port."""
    import socket

    import typer

    app = typer.Typer(cls=MlfactoryGroup)
    app.command("serve")(serve_command)
    app.command("noop")(lambda: None)
    monkeypatch.setenv("MLFACTORY_HOME", str(registered.settings.home))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        cases = {str(busy): "Address already in use", "99999": "expected 1-65535"}
        for port, words in cases.items():
            result = CliRunner().invoke(app, ["serve", "credit", "--port", port])
            assert result.exit_code == 2, result.output
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.output
            assert port in lines[0] and words in lines[0], lines
            assert "serving" not in result.output  # no banner


@pytest.mark.slow
def test_two_worker_processes_serve(registered, tmp_path):
    import os
    import subprocess
    import sys

    import httpx

    port = free_port()
    env = {**os.environ, "MLFACTORY_HOME": str(registered.settings.home)}
    code = (
        "from mlfactory.serving import run_server; from mlfactory.settings import load_settings; "
        f"run_server(load_settings(), 'credit', port={port}, workers=2, log_predictions=False)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(url + "/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert _wait_for(up, timeout=120)
        body = {"dataframe_records": records(registered.X.head(3))}
        answers = [httpx.post(url + "/invocations", json=body, timeout=30) for _ in range(4)]
        expected = registered.pipeline.predict(registered.X.head(3)).tolist()
        assert all(a.json() == {"predictions": expected} for a in answers)
    finally:
        process.terminate()
        process.wait(30)
