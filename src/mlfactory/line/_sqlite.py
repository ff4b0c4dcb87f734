"""A line's records read with the standard library's ``sqlite3``: a rerun with nothing to do.

``mlfactory run`` on an up-to-date line only reads: the newest finished record of each stage
and the champion. On the embedded SQLite database it reads them here, through a read-only
connection, without importing SQLAlchemy (~0.15 s, a third of such a rerun; issue #18). It
answers only when everything is plain: a local SQLite file whose mlfactory schema is at this
version's head, and no run holding the line's lock. Otherwise, and as soon as a stage must run,
the line is walked again through SQLAlchemy (:class:`mlfactory.line._records.SqlRecords`),
which takes the lock, upgrades the schema and writes the records.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlfactory.line._records import CHAMPION_SQL, ChampionUnknown, StageRecord

__all__ = ["NotQuick", "SqliteRecords", "head_revision", "open_records", "sqlite_path"]

VERSION_TABLE = "mlfactory_alembic_version"  # mlfactory.db's, read without importing it
MIGRATIONS = Path(__file__).resolve().parents[1] / "db" / "migrations" / "versions"
BUSY_TIMEOUT_S = 60.0
_COLUMNS = ", ".join(StageRecord.__dataclass_fields__)


class NotQuick(Exception):
    """The read-only path cannot decide: walk the line through SQLAlchemy instead."""


@cache
def head_revision() -> str | None:
    """The newest revision of mlfactory's schema, read from the revision files' ``revision`` and
    ``down_revision`` lines; None unless they form one plain chain (Alembic decides then).

    The same reading as :func:`mlfactory.db.head_revision` (a test holds them equal), whose
    module imports SQLAlchemy.
    """
    revisions: dict[str, object] = {}
    for path in MIGRATIONS.glob("*.py"):
        found: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.expr):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                        found[target.id] = ast.literal_eval(node.value)
        if isinstance(found.get("revision"), str):
            revisions[str(found["revision"])] = found.get("down_revision")
    parents = set(revisions.values())
    heads = [r for r in revisions if r not in parents]
    plain = all(p is None or isinstance(p, str) for p in parents)
    return heads[0] if len(heads) == 1 and plain else None


def sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL; None for anything else (PostgreSQL, a query
    string, escapes, memory), which SQLAlchemy reads."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url.removeprefix(prefix)
            if not rest or rest == ":memory:" or any(c in rest for c in "?%#"):
                return None
            return Path(rest)
    return None


def _datetime(value: Any) -> datetime | None:
    """SQLAlchemy keeps a SQLite datetime as ISO text (naive UTC): the same value back."""
    return None if value is None else datetime.fromisoformat(str(value))


def _json(value: Any) -> Any:
    return None if value is None else json.loads(value)


class SqliteRecords:
    """The reads of :class:`mlfactory.line._records.SqlRecords`, through a read-only ``sqlite3``
    connection; any SQLite error is :class:`NotQuick`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def _rows(self, sql: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return self.connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise NotQuick(str(exc)) from None

    def latest(self, line: str, stage: str) -> StageRecord | None:
        """The newest finished record of ``stage`` (as :func:`~._records.latest_record`)."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM line_stage_records WHERE line = :line AND stage = :stage"
            " AND status = 'finished' ORDER BY id DESC LIMIT 1",
            {"line": line, "stage": stage},
        )
        if not rows:
            return None
        values = dict(zip(StageRecord.__dataclass_fields__, rows[0], strict=True))
        for name in ("key_parts", "outputs"):
            values[name] = _json(values[name])
        for name in ("started_at", "finished_at"):
            values[name] = _datetime(values[name])
        return StageRecord(**values)

    def ever_failed(self, line: str, stage: str) -> bool:
        """Whether some run of ``stage`` failed."""
        return bool(
            self._rows(
                "SELECT id FROM line_stage_records WHERE line = :line AND stage = :stage"
                " AND status = 'failed' LIMIT 1",
                {"line": line, "stage": stage},
            )
        )

    def champion(self, model: str, alias: str) -> dict[str, Any] | None:
        """``{version, model_sha256}`` of ``model@alias`` from MLflow's registry tables."""
        names = {r[0] for r in self._rows("SELECT name FROM sqlite_master WHERE type='table'", {})}
        if "registered_model_aliases" not in names:
            if "experiments" not in names:
                return None
            raise ChampionUnknown(model)
        rows = self._rows(CHAMPION_SQL, {"name": model, "alias": alias})
        return None if not rows else {"version": str(rows[0][0]), "model_sha256": rows[0][1]}

    def close(self) -> None:
        self.connection.close()


def open_records(url: str, line: str) -> SqliteRecords | None:
    """A read-only reader of ``line``'s records, or None when SQLAlchemy must walk the line:
    not a local SQLite file, no such file, a schema not at head, or the line's lock held."""
    path = sqlite_path(url)
    head = head_revision()
    if path is None or head is None or not path.is_file():
        return None
    try:
        connection = sqlite3.connect(
            f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S
        )
    except sqlite3.Error:
        return None
    reader = SqliteRecords(connection)
    try:
        version = reader._rows(f"SELECT version_num FROM {VERSION_TABLE}", {})
        locked = reader._rows("SELECT owner FROM line_locks WHERE line = :line", {"line": line})
    except NotQuick:
        version, locked = [], []
    if version != [(head,)] or locked:
        reader.close()
        return None
    return reader
