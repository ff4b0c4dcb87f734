"""Retention of the prediction log: by age and/or rows, applied by the writer process in small
batches between its inserts, on real SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from _serving_helpers import client, records

from mlfactory.db import get_engine
from mlfactory.prediction_log import (
    PREDICTION_LOG,
    LoggedRequest,
    LogRetention,
    create_prediction_log,
    insert_prediction_requests,
    prune_prediction_log,
)
from mlfactory.serving import create_app
from mlfactory.serving._metrics import Counter
from mlfactory.serving._predlog import PredictionLogWriter
from mlfactory.settings import load_settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("postgres_url")


def _request(name: str, age: timedelta) -> LoggedRequest:
    return LoggedRequest(
        request_id=name,
        model_name="m",
        model_version="1",
        received_at=datetime.now(UTC) - age,
        columns={"x": [1.0, 2.0]},
        predictions=[0, 1],
        probabilities=None,
        model_ms=0.1,
    )


def _log(engine: sa.Engine, names: list[str], age: timedelta) -> None:
    with engine.begin() as connection:
        insert_prediction_requests(connection, [_request(name, age) for name in names])


def _logged(engine: sa.Engine) -> list[str]:
    table = PREDICTION_LOG
    with engine.connect() as connection:
        return list(connection.scalars(sa.select(table.c.request_id).order_by(table.c.id)))


def _wait_for(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_old_requests_are_deleted_a_batch_at_a_time(db_url) -> None:
    engine = get_engine(db_url)
    create_prediction_log(engine)
    _log(engine, [f"old{i}" for i in range(7)], timedelta(days=31))
    _log(engine, ["new0", "new1"], timedelta(days=29))
    retention = LogRetention(max_age_days=30, batch_rows=3)
    assert [prune_prediction_log(engine, retention) for _ in range(4)] == [3, 3, 1, 0]
    assert _logged(engine) == ["new0", "new1"]


def test_only_the_newest_rows_are_kept(db_url) -> None:
    engine = get_engine(db_url)
    create_prediction_log(engine)
    _log(engine, [f"r{i}" for i in range(6)], timedelta(minutes=1))
    retention = LogRetention(max_age_days=None, max_rows=4, batch_rows=10)
    assert prune_prediction_log(engine, retention) == 2
    assert prune_prediction_log(engine, retention) == 0
    assert _logged(engine) == ["r2", "r3", "r4", "r5"]
    assert prune_prediction_log(engine, LogRetention(max_age_days=None)) == 0  # no limit at all


def test_the_writer_process_prunes_between_its_inserts(db_url) -> None:
    engine = get_engine(db_url)
    create_prediction_log(engine)
    _log(engine, [f"old{i}" for i in range(25)], timedelta(days=40))
    writer = PredictionLogWriter(
        engine,
        written=Counter("w", "w"),
        dropped=Counter("d", "d"),
        flush_interval_s=0.05,
        retention=LogRetention(max_age_days=30, max_rows=12, interval_s=0.2, batch_rows=4),
    )
    writer.start()
    try:
        for i in range(10):
            started = time.perf_counter()
            assert writer.submit(_request(f"new{i}", timedelta(0)))
            assert time.perf_counter() - started < 0.05  # the request path never waits
        assert _wait_for(lambda: _logged(engine) == [f"new{i}" for i in range(10)])
        assert _wait_for(lambda: writer.pruned == 25)  # reported back to the service
        for i in range(10, 15):  # past max_rows: the oldest of the new ones go at the next pass
            writer.submit(_request(f"new{i}", timedelta(0)))
        assert _wait_for(lambda: _logged(engine) == [f"new{i}" for i in range(3, 15)])
    finally:
        writer.close()
    assert writer.written.value() == 30 and writer.dropped.value() == 0


def test_retention_settings_and_their_default(monkeypatch) -> None:
    default = LogRetention.from_settings(load_settings())
    assert default == LogRetention(max_age_days=30.0, max_rows=None, interval_s=60, batch_rows=1000)
    monkeypatch.setenv("MLFACTORY_PREDICTION_LOG_MAX_AGE_DAYS", "0")
    monkeypatch.setenv("MLFACTORY_PREDICTION_LOG_MAX_ROWS", "")
    assert not LogRetention.from_settings(load_settings()).active  # keep everything
    monkeypatch.setenv("MLFACTORY_PREDICTION_LOG_MAX_AGE_DAYS", "7.5")
    monkeypatch.setenv("MLFACTORY_PREDICTION_LOG_MAX_ROWS", "1000000")
    monkeypatch.setenv("MLFACTORY_PREDICTION_LOG_PRUNE_INTERVAL_S", "5")
    monkeypatch.setenv("MLFACTORY_PREDICTION_LOG_PRUNE_BATCH_ROWS", "200")
    assert LogRetention.from_settings(load_settings()) == LogRetention(7.5, 1_000_000, 5.0, 200)


def test_the_service_applies_the_settings_retention(registered, serve, tmp_path) -> None:
    db_url = f"sqlite:///{tmp_path / 'served.db'}"
    engine = get_engine(db_url)
    create_prediction_log(engine)
    _log(engine, ["ancient"], timedelta(days=3))
    settings = load_settings(home=registered.settings.home, prediction_log_max_age_days=2)
    server = serve(create_app(settings, "credit", log_db_url=db_url, log_flush_interval_s=0.05))
    with client(server) as http:
        assert http.post("/predict", json=records(registered.X.head(2))).status_code == 200
    assert _wait_for(lambda: len(_logged(engine)) == 1 and "ancient" not in _logged(engine))
