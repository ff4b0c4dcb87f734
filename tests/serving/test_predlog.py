"""The prediction log writer: batched off the request path, bounded, flushed on close."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from mlfactory.db import get_engine
from mlfactory.prediction_log import PREDICTION_LOG, read_prediction_log
from mlfactory.serving import free_port
from mlfactory.serving._metrics import Counter
from mlfactory.serving._predlog import LoggedRequest, PredictionLogWriter


def _request(i: int, rows: int = 1) -> LoggedRequest:
    return LoggedRequest(
        request_id=f"r{i}",
        model_name="m",
        model_version="1",
        received_at=datetime.now(UTC),
        columns={"x": [float(i)] * rows, "city": ["Lyon"] * rows},
        predictions=[i % 2] * rows,
        probabilities={"0": [0.25] * rows, "1": [0.75] * rows},
        model_ms=0.1,
    )


def _writer(tmp_path, **options) -> tuple[PredictionLogWriter, sa.Engine]:
    engine = get_engine(f"sqlite:///{tmp_path / 'log.db'}")
    writer = PredictionLogWriter(
        engine, written=Counter("w", "w"), dropped=Counter("d", "d"), **options
    )
    return writer, engine


def _count(engine: sa.Engine) -> int:
    """Records logged (each table row is a request holding ``records`` of them)."""
    with engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.sum(PREDICTION_LOG.c.records))).scalar()
    return int(total or 0)


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_full_batch_wakes_the_writer_and_close_flushes_the_rest(tmp_path) -> None:
    writer, engine = _writer(tmp_path, batch_rows=100, flush_interval_s=3600)
    writer.start()
    for i in range(250):
        assert writer.submit(_request(i))
    # no timer for an hour: only the batch size can have woken the writer
    assert _wait_for(lambda: writer.written.value() >= 200)
    assert writer.pending_rows < 100
    writer.close()
    assert writer.written.value() == 250 and writer.pending_rows == 0
    log = read_prediction_log(engine, "m")
    assert len(log) == _count(engine) == 250
    assert sorted(log["x"].tolist()) == [float(i) for i in range(250)]
    assert set(log["city"]) == {"Lyon"}


def test_the_timer_flushes_a_few_rows_without_waiting_for_a_batch(tmp_path) -> None:
    writer, engine = _writer(tmp_path, batch_rows=10_000, flush_interval_s=0.05)
    writer.start()
    writer.submit(_request(1, rows=3))
    try:
        assert _wait_for(lambda: _count(engine) == 3 if writer.written.value() else False)
    finally:
        writer.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path) -> None:
    writer, engine = _writer(tmp_path, max_queue_rows=10, batch_rows=1000)
    assert writer.submit(_request(1, rows=8))  # not started: nothing drains the queue
    assert not writer.submit(_request(2, rows=5))
    assert writer.dropped.value() == 5 and writer.pending_rows == 8
    writer.start()
    writer.close()
    assert _count(engine) == 8 and writer.pending_rows == 0


def test_an_unreachable_database_loses_records_but_not_the_service(tmp_path) -> None:
    writer, _ = _writer(tmp_path, batch_rows=2, flush_interval_s=0.05)
    # nothing listens on a port just found free: every connection is refused
    writer.engine = get_engine(f"postgresql+psycopg://u:secret@127.0.0.1:{free_port()}/db")
    writer.start()
    for i in range(4):
        assert writer.submit(_request(i))
    assert _wait_for(lambda: writer.dropped.value() == 4)
    writer.close()
    assert writer.written.value() == 0 and writer.pending_rows == 0


def test_a_killed_writer_process_is_replaced_and_logging_goes_on(tmp_path) -> None:
    writer, engine = _writer(tmp_path, batch_rows=1, flush_interval_s=0.05)
    writer.start()
    writer.submit(_request(1))
    assert _wait_for(lambda: writer.written.value() == 1)
    first = writer._process
    first.kill()
    first.join(5)
    writer.submit(_request(2))
    assert _wait_for(lambda: writer.written.value() == 2)
    assert writer._process is not first and writer._process.is_alive()
    writer.close()
    assert writer._process is None and not first.is_alive()
    assert sorted(read_prediction_log(engine, "m")["request_id"]) == ["r1", "r2"]
