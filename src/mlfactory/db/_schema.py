"""mlfactory's schema under version control: Alembic revisions in their own version table.

Writers call :func:`ensure_schema` before they write: on the embedded SQLite default it upgrades
by itself; on a server database (PostgreSQL) it creates the tables of an empty database but
refuses to upgrade an existing older schema — a team upgrades on purpose, with
``mlfactory db upgrade``. Readers call :func:`schema_status`, which never creates or alters
anything (not even the version table).
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlfactory.exceptions import ConfigError
from mlfactory.settings import mask_url

__all__ = [
    "VERSION_TABLE",
    "SchemaStatus",
    "ensure_schema",
    "head_revision",
    "schema_status",
    "upgrade_schema",
]

VERSION_TABLE = "mlfactory_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"
OWN_TABLES = (
    "cv_fold_results",
    "tuning_results",
    "prediction_requests",
    "drift_reports",
    "line_stage_records",
    "line_locks",
    "promotion_decisions",
    "segment_results",
)
_ADVISORY_LOCK = 0x6D6C66  # "mlf": serialises concurrent upgrades on PostgreSQL
_ready: set[str] = set()
_lock = threading.Lock()


def _config(connection: sa.Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision this mlfactory ships.

    Read from the ``revision``/``down_revision`` lines of the revision files: importing Alembic
    takes ~0.25 s that a writer whose schema is at head never needs. Anything but one plain chain
    (a merge, a branch) is left to Alembic's ``ScriptDirectory``; a test checks both agree.
    """
    revisions: dict[str, object] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.expr):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                        found[target.id] = ast.literal_eval(node.value)
        revision = found.get("revision")
        if isinstance(revision, str):
            revisions[revision] = found.get("down_revision")
    parents = set(revisions.values())
    heads = [r for r in revisions if r not in parents]
    if len(heads) == 1 and all(p is None or isinstance(p, str) for p in parents):
        return heads[0]
    return _alembic_head()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's mlfactory schema stands against this version's head."""

    current: str | None  # None: no version table (empty, or tables made before migrations)
    head: str
    tables: tuple[str, ...]  # mlfactory's tables present

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None and not self.tables

    def describe(self) -> str:
        if self.up_to_date:
            return f"revision {self.current} (up to date)"
        if self.empty:
            return f"no mlfactory tables yet (head revision {self.head})"
        current = self.current or "none (tables made before migrations)"
        return f"revision {current}, upgrade pending to {self.head}"


def _current(connection: sa.Connection) -> str | None:
    """The version table's revision: one plain SELECT (Alembic's ``MigrationContext`` reads the
    same row but costs ~0.25 s to import); several rows (branches) are left to Alembic."""
    rows = connection.execute(
        sa.select(sa.column("version_num")).select_from(sa.table(VERSION_TABLE))
    ).all()
    if len(rows) <= 1:
        return rows[0][0] if rows else None
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _status(connection: sa.Connection) -> SchemaStatus:
    names = set(sa.inspect(connection).get_table_names())
    current = _current(connection) if VERSION_TABLE in names else None
    return SchemaStatus(current, head_revision(), tuple(t for t in OWN_TABLES if t in names))


def schema_status(engine: Engine) -> SchemaStatus:
    """Read the schema's revision without writing anything."""
    with engine.connect() as connection:
        return _status(connection)


def upgrade_schema(engine: Engine) -> SchemaStatus:
    """Apply every pending revision in one transaction (``mlfactory db upgrade``)."""
    from alembic import command

    with _lock, engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")
        command.upgrade(_config(connection), "head")
    _ready.add(str(engine.url))
    return schema_status(engine)


def ensure_schema(engine: Engine) -> None:
    """Make sure the schema is at head before a write (see the module's docstring)."""
    key = str(engine.url)
    if key in _ready:
        return
    status = schema_status(engine)
    if status.up_to_date:
        _ready.add(key)
        return
    if engine.dialect.name == "sqlite" or status.empty:
        try:
            upgrade_schema(engine)
        except Exception:
            if not schema_status(engine).up_to_date:  # not a concurrent upgrader: a real failure
                raise
            _ready.add(key)
        return
    raise ConfigError(
        f"database {mask_url(engine.url)} holds mlfactory schema "
        f"{status.describe()}; run `mlfactory db upgrade` to upgrade it on purpose"
    )
