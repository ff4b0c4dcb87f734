"""Engines: one pooled engine per URL, SQLite in WAL mode with a busy timeout.

SQLite (the embedded default) is opened in WAL mode with a busy timeout so that several
processes can write at once; PostgreSQL is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from mlfactory.exceptions import ConfigError
from mlfactory.settings import mask_url, mask_urls_in_text

__all__ = [
    "DatabaseStatus",
    "check_database",
    "check_sqlite_file",
    "get_engine",
    "not_a_database_error",
    "readonly_engine",
]

SQLITE_BUSY_TIMEOUT_MS = 60_000
_SQLITE_HINT = (
    "the database URL (MLFACTORY_DB_URL, or HOME/mlfactory.db by default) must name mlfactory's "
    "SQLite file, or a path where it can create one"
)
# SQLite's own words for a file that is not a database (never open the file to look: closing
# another descriptor of a database file drops this process's POSIX locks on it)
_NOT_A_DATABASE = ("file is not a database", "database disk image is malformed")


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if str(parsed.database).startswith("file:"):  # an SQLite URI: its own parameters
        return None
    return Path(str(parsed.database))


def check_sqlite_file(url: str) -> None:
    """Refuse, in one line naming it, an SQLite URL whose path is a folder (SQLAlchemy would
    say "unable to open database file", or a reader "no store yet"). Only ``stat``s the path."""
    path = _sqlite_path(url)
    if path is not None and path.is_dir():
        error = ConfigError(f"{path.resolve()}: is a folder, expected an SQLite database file")
        error.hint = _SQLITE_HINT
        raise error


def not_a_database_error(url: str, message: str) -> ConfigError | None:
    """The one-line error naming the file when SQLite said the URL's file is not a database
    (``message``: the driver's words); ``None`` for any other error or URL."""
    path = _sqlite_path(url)
    reason = next((words for words in _NOT_A_DATABASE if words in message), None)
    if path is None or reason is None:
        return None
    error = ConfigError(f"{path.resolve()}: is not an SQLite database ({reason})")
    error.hint = _SQLITE_HINT
    return error


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """A pooled engine for ``url`` (cached per URL); SQLite files get WAL and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        check_sqlite_file(url)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, pool_pre_ping=True
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)


def readonly_engine(url: str) -> Engine | None:
    """An engine that cannot write: SQLite opened ``mode=ro``, PostgreSQL sessions read-only.

    ``None`` when the SQLite file does not exist (a reader never creates it); asked again, once
    the file exists, it gives the engine (only engines are cached).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None
        check_sqlite_file(url)
        if not Path(parsed.database).resolve().is_file():
            return None
    return _readonly_engine(url)


@lru_cache(maxsize=8)
def _readonly_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database)).resolve()
        return sa.create_engine(
            f"sqlite:///file:{path.as_posix()}?mode=ro&uri=true",
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"options": "-c default_transaction_read_only=on"},
    )


@dataclass(frozen=True)
class DatabaseStatus:
    url: str  # masked
    reachable: bool
    detail: str  # server version when reachable, the reason otherwise


def check_database(url: str, timeout_s: float = 5.0) -> DatabaseStatus:
    """Try to connect (read-only) and say why not; never raises, never shows the password."""
    masked = mask_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.exists():
            return DatabaseStatus(masked, True, f"SQLite file {path} is created on first use")
        if path.is_dir():
            return DatabaseStatus(masked, False, f"{path.resolve()}: is a folder, not a file")
    connect_args: dict[str, object] = {}
    target = url
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(1, int(timeout_s))
        connect_args["options"] = "-c default_transaction_read_only=on"
    elif parsed.database not in (None, "", ":memory:"):  # read-only: not even a WAL checkpoint
        target = f"sqlite:///file:{Path(parsed.database).resolve().as_posix()}?mode=ro&uri=true"
    try:
        engine = sa.create_engine(target, connect_args=connect_args, hide_parameters=True)
        try:
            with engine.connect() as connection:
                if parsed.get_backend_name() == "sqlite":
                    found = connection.exec_driver_sql(  # sqlite_master: reads the file's header
                        "select sqlite_version() from (select count(*) from sqlite_master)"
                    ).scalar()
                    version = f"SQLite {found}"
                else:
                    version = str(connection.exec_driver_sql("select version()").scalar())
        finally:
            engine.dispose()
    except Exception as exc:  # report any failure as the reason
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return DatabaseStatus(masked, False, mask_urls_in_text(reason))
    return DatabaseStatus(masked, True, version.split(",")[0])
