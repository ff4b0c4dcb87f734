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
from typing import TYPE_CHECKING, Any

from mlfactory.exceptions import MlfactoryError

if TYPE_CHECKING:  # SQLAlchemy loads with the first query: a no-op rerun reads through sqlite3
    from sqlalchemy.engine import Engine

__all__ = [
    "ChampionUnknown",
    "LineBusy",
    "SqlRecords",
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


class ChampionUnknown(Exception):
    """The registry's tables cannot say who the champion is: ask the MLflow client."""


def _record(row: Any) -> StageRecord:
    return StageRecord(**{c: getattr(row, c) for c in StageRecord.__dataclass_fields__})


class SqlRecords:
    """What a line reads while it walks its stages, through SQLAlchemy (SQLite or PostgreSQL).

    :class:`mlfactory.line._sqlite.SqliteRecords` answers the same three questions with the
    standard library's ``sqlite3`` on a local SQLite file, for a rerun with nothing to do.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def latest(self, line: str, stage: str) -> StageRecord | None:
        """The newest finished record of ``stage`` (:func:`latest_record`)."""
        return latest_record(self.engine, line, stage)

    def ever_failed(self, line: str, stage: str) -> bool:
        """Whether some run of ``stage`` failed (its last run, when none finished)."""
        import sqlalchemy as sa

        from mlfactory.db._tables import LINE_STAGE_RECORDS as T

        failed = (T.c.line == line, T.c.stage == stage, T.c.status == "failed")
        query = sa.select(T.c.id).where(*failed)
        with self.engine.connect() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def champion(self, model: str, alias: str) -> dict[str, Any] | None:
        """``{version, model_sha256}`` of ``model@alias`` read from MLflow's registry tables in
        the same database; None when there is none; :class:`ChampionUnknown` when the tables
        cannot say (an older MLflow schema, a database error)."""
        import sqlalchemy as sa

        query = sa.text(CHAMPION_SQL)
        try:
            with self.engine.connect() as connection:
                names = set(sa.inspect(connection).get_table_names())
                if "registered_model_aliases" not in names:
                    if "experiments" not in names:
                        return None  # no MLflow store yet: no champion
                    raise ChampionUnknown(model)
                row = connection.execute(query, {"name": model, "alias": alias}).first()
        except sa.exc.SQLAlchemyError:
            raise ChampionUnknown(model) from None
        return None if row is None else {"version": str(row[0]), "model_sha256": row[1]}


# the champion's version and model SHA-256 (a tag) from MLflow's registry tables (named
# parameters: SQLAlchemy's text() and sqlite3 both read them)
CHAMPION_SQL = (
    "SELECT a.version, t.value FROM registered_model_aliases a LEFT JOIN model_version_tags t"
    " ON t.name = a.name AND t.version = a.version AND t.key = 'model_sha256'"
    " WHERE a.name = :name AND a.alias = :alias"
)


def latest_record(engine: Engine, line: str, stage: str) -> StageRecord | None:
    """The newest finished record of ``stage``: the one a cache key is compared with."""
    import sqlalchemy as sa

    from mlfactory.db._tables import LINE_STAGE_RECORDS

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
    import sqlalchemy as sa

    from mlfactory.db._tables import LINE_STAGE_RECORDS

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
    from mlfactory.db import ensure_schema
    from mlfactory.db._tables import LINE_STAGE_RECORDS

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
    from mlfactory.db._tables import LINE_STAGE_RECORDS

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
    import sqlalchemy as sa

    from mlfactory.db._tables import LINE_LOCKS

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
    import sqlalchemy as sa

    from mlfactory.db._tables import LINE_LOCKS

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
    from mlfactory.db import ensure_schema
    from mlfactory.db._tables import LINE_LOCKS

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
