"""The ``--sql`` input of batch scoring: one SELECT, run on a read-only connection.

Two guards, each enough on its own for the common cases: the text must be a single ``SELECT`` or
``WITH ... SELECT`` statement (checked with sqlparse, which MLflow already requires, so comments,
string literals and dollar quotes cannot hide a second statement), and the connection cannot
write (SQLite opened ``mode=ro`` with ``PRAGMA query_only``; PostgreSQL in a ``READ ONLY``
transaction, which also stops a data-modifying CTE or a writing function).
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from mlfactory.batch._sinks import Refused
from mlfactory.exceptions import ConfigError, DataError
from mlfactory.settings import mask_url

__all__ = ["check_query", "db_error", "read_only_connection", "sqlite_file"]

_EXPECTED = "expected a single SELECT or WITH ... SELECT statement"


def _meaningful(statement) -> bool:
    import sqlparse.tokens as T

    return any(
        not (token.is_whitespace or token.ttype in T.Comment or token.match(T.Punctuation, ";"))
        for token in statement.flatten()
    )


def check_query(query: str) -> str:
    """The query to run (without a trailing ``;``), or :class:`Refused` before anything runs."""
    import sqlparse
    import sqlparse.tokens as T

    statements = [s for s in sqlparse.parse(query or "") if _meaningful(s)]
    if not statements:
        raise Refused(f"--sql is empty: {_EXPECTED}; refused, nothing was run")
    if len(statements) > 1:
        raise Refused(
            f"--sql holds {len(statements)} statements: {_EXPECTED}; refused, nothing was run"
        )
    statement = statements[0]
    first = statement.token_first(skip_ws=True, skip_cm=True)
    keyword = first.normalized.upper() if first is not None and first.is_keyword else ""
    kind = statement.get_type()
    if keyword not in ("SELECT", "WITH") or kind != "SELECT":
        shown = kind if kind != "UNKNOWN" else (str(first).split()[0] if first else "?")
        article = "an" if shown[:1].upper() in "AEIOU" else "a"
        raise Refused(
            f"--sql is {article} {shown[:40]} statement: {_EXPECTED} (batch scoring only reads); "
            "refused, nothing was run"
        )
    tokens = list(statement.flatten())
    while tokens and (
        tokens[-1].is_whitespace
        or tokens[-1].ttype in T.Comment
        or tokens[-1].match(T.Punctuation, ";")
    ):
        tokens.pop()
    return "".join(str(t) for t in tokens).strip()


def db_error(exc: BaseException) -> str:
    """The database's own message, first line: never SQLAlchemy's SQL, parameters or rows."""
    while getattr(exc, "orig", None) is None and exc.__cause__ is not None:
        exc = exc.__cause__  # pandas wraps SQLAlchemy's error, whose ``orig`` is the driver's
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    if orig is None:  # not the driver's: drop any [SQL: ...] / [parameters: ...] / query text
        text = text.split("[SQL:")[0].split("[parameters:")[0].strip()
        if text.startswith("Execution failed on sql"):
            return "the database refused it"
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line[:300]


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases or in-memory ones)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    database = str(parsed.database)
    if database.startswith("file:"):
        database = urllib.parse.urlsplit(database).path
    return Path(database)


@contextlib.contextmanager
def read_only_connection(url: str) -> Iterator[Connection]:
    """A connection to ``url`` that cannot write, whatever the query does."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        if path is None:
            raise ConfigError(f"--sql needs a database file; {mask_url(url)} is in memory")
        if not path.is_file():
            raise DataError(f"input database {path} not found (from {mask_url(url)})")
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
            connection.execute("PRAGMA query_only=ON")
            return connection

        engine = sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)
    elif backend == "postgresql":
        engine = sa.create_engine(url, hide_parameters=True, poolclass=sa.pool.NullPool)
    else:
        raise ConfigError(
            f"--sql reads SQLite or PostgreSQL databases, not {backend} ({mask_url(url)})"
        )
    try:
        try:
            connection = engine.connect()
            if backend == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                state = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
                if state != "on":  # pragma: no cover - PostgreSQL always honours it
                    raise DataError("could not make the --sql transaction read-only; refused")
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"cannot open {mask_url(url)} for --sql: {db_error(exc)}") from None
        try:
            yield connection
        finally:
            connection.close()
    finally:
        engine.dispose()
