"""Stage records and the line's lock, both rows in mlfactory's database (SQLite or PostgreSQL).

A stage record is written ``running`` when the stage starts and becomes ``finished`` (with the
outputs later stages take as inputs) or ``failed`` (with the error). The lock is one row per
line in ``line_locks``: a second ``mlfactory run`` of the same line waits for it or exits, on
any machine that shares the database. The holder renews the row's time every 30 s; a lock not
renewed for 10 minutes (its machine died), or held by a process of this machine that no longer
exists, is taken over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlfactory.db import ensure_schema
from mlfactory.db._tables import LINE_LOCKS, LINE_STAGE_RECORDS
from mlfactory.exceptions import MlfactoryError

__all__ = [
    "LineBusy",
    "StageRecord",
    "fail_record",
    "finish_record",
    "latest_record",
    "line_lock",
    "stage_history",
    "start_record",
]


LOCK_RENEW_S = 30.0  # the holder renews its lock row this often
LOCK_EXPIRES_S = 600.0  # a lock not renewed for this long is stale (its machine died)


class LineBusy(MlfactoryError):
    """Another ``mlfactory run`` holds the line."""

    exit_code = 75  # EX_TEMPFAIL: try again later


@dataclass
class StageRecord:
    id: int
    line: str
    stage: str
    cache_key: str
    status: str
    key_parts: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    line_run_id: str | None
    started_at: datetime
    finished_at: datetime | None


def _record(row: Any) -> StageRecord:
    return StageRecord(**{c: getattr(row, c) for c in StageRecord.__dataclass_fields__})


def latest_record(engine: Engine, line: str, stage: str) -> StageRecord | None:
    """The newest finished record of ``stage``: the one a cache key is compared with."""
    table = LINE_STAGE_RECORDS
    query = (
        sa.select(table)
        .where(table.c.line == line, table.c.stage == stage, table.c.status == "finished")
        .order_by(table.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return _record(row) if row is not None else None


def stage_history(engine: Engine, line: str) -> list[StageRecord]:
    """Every record of a line, oldest first."""
    table = LINE_STAGE_RECORDS
    query = sa.select(table).where(table.c.line == line).order_by(table.c.id)
    with engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def start_record(
    engine: Engine,
    line: str,
    stage: str,
    key: str,
    parts: dict[str, Any],
    line_run_id: str | None,
) -> int:
    ensure_schema(engine)
    with engine.begin() as connection:
        result = connection.execute(
            LINE_STAGE_RECORDS.insert().values(
                line=line,
                stage=stage,
                cache_key=key,
                status="running",
                key_parts=parts,
                line_run_id=line_run_id,
                started_at=datetime.now(UTC),
            )
        )
        return int(result.inserted_primary_key[0])


def _end(engine: Engine, record_id: int, **values: Any) -> None:
    table = LINE_STAGE_RECORDS
    with engine.begin() as connection:
        connection.execute(
            table.update()
            .where(table.c.id == record_id)
            .values(finished_at=datetime.now(UTC), **values)
        )


def finish_record(engine: Engine, record_id: int, outputs: dict[str, Any]) -> None:
    _end(engine, record_id, status="finished", outputs=outputs)


def fail_record(engine: Engine, record_id: int, error: str) -> None:
    _end(engine, record_id, status="failed", error=error[:4_000])


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(owner: str) -> bool:
    """True when ``owner`` is a process of this machine that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _expired(renewed: datetime) -> bool:
    """True when the holder has not renewed the lock for ``LOCK_EXPIRES_S`` (a dead machine)."""
    if renewed.tzinfo is None:  # SQLite gives back naive UTC
        renewed = renewed.replace(tzinfo=UTC)
    return (datetime.now(UTC) - renewed).total_seconds() > LOCK_EXPIRES_S


def _renew(engine: Engine, line: str, owner: str, stop: threading.Event) -> None:
    """Renew the lock's time every ``LOCK_RENEW_S`` while the run holds it."""
    while not stop.wait(LOCK_RENEW_S):
        try:
            with engine.begin() as connection:
                connection.execute(
                    LINE_LOCKS.update()
                    .where(LINE_LOCKS.c.line == line, LINE_LOCKS.c.owner == owner)
                    .values(acquired_at=datetime.now(UTC))
                )
        except sa.exc.SQLAlchemyError:  # the next renewal tries again
            continue


def _try_take(engine: Engine, line: str, owner: str) -> str | None:
    """Insert the lock row; ``None`` when taken, else the holder's text."""
    table = LINE_LOCKS
    try:
        with engine.begin() as connection:
            connection.execute(
                table.insert().values(line=line, owner=owner, acquired_at=datetime.now(UTC))
            )
        return None
    except sa.exc.IntegrityError:
        with engine.connect() as connection:
            row = connection.execute(sa.select(table).where(table.c.line == line)).first()
        if row is None:
            return "?"  # released in between: try again
        if _dead_here(row.owner) or _expired(row.acquired_at):
            with engine.begin() as connection:  # its process is gone: the lock is stale
                connection.execute(
                    table.delete().where(table.c.line == line, table.c.owner == row.owner)
                )
            return "?"
        return f"{row.owner} since {row.acquired_at:%Y-%m-%d %H:%M:%S}"


@contextlib.contextmanager
def line_lock(engine: Engine, line: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the line's lock row for the block; wait up to ``wait_s`` seconds for it, then exit."""
    ensure_schema(engine)
    owner = _owner()
    deadline = time.monotonic() + wait_s
    while True:
        holder = _try_take(engine, line, owner)
        if holder is None:
            break
        if holder != "?" and time.monotonic() >= deadline:
            raise LineBusy(
                f"line {line!r} is being run by {holder}; wait for it to finish or pass "
                "--wait SECONDS"
            )
        time.sleep(0.5 if holder == "?" else 1.0)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(engine, line, owner, stop), name="line-lock", daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with engine.begin() as connection:
            connection.execute(
                LINE_LOCKS.delete().where(LINE_LOCKS.c.line == line, LINE_LOCKS.c.owner == owner)
            )
