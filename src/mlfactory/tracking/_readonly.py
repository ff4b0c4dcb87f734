"""Readers of the tracking store: look before opening, then open it so that it cannot write.

MLflow's ``SqlAlchemyStore`` creates and migrates its tables when it finds them missing, and a
SQLite URL makes it create the file and its folders. A reader (dashboard, ``runs list/show``,
``models list/show``) therefore first reads the store's state through a read-only engine — no file
is created, nothing is written — and opens MLflow only on a complete store at this MLflow's schema
revision, through a URL that cannot write: SQLite opened ``mode=ro`` (as
``sqlite+pysqlite:///file:…``, which MLflow leaves alone instead of creating folders for it),
PostgreSQL sessions with ``default_transaction_read_only``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mlfactory.db import SQLITE_BUSY_TIMEOUT_MS, readonly_engine
from mlfactory.exceptions import ConfigError, ModelNotFound
from mlfactory.settings import Settings, mask_url

__all__ = [
    "TrackingState",
    "TrackingStoreEmpty",
    "TrackingStoreNotReady",
    "readonly_tracking_uri",
    "tracking_state",
]

READ_ONLY_OPTION = "-c default_transaction_read_only=on"


class TrackingStoreEmpty(ModelNotFound):
    """The tracking store does not exist yet or holds no MLflow tables (nothing trained yet)."""


class TrackingStoreNotReady(ConfigError):
    """The tracking store's MLflow schema is incomplete, older or newer than this MLflow's."""


@dataclass(frozen=True)
class TrackingState:
    """What a reader found: ``ready``, ``missing``, ``empty``, ``older``, ``newer`` or
    ``incomplete``, and one line saying so."""

    state: str
    message: str

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def empty(self) -> bool:
        return self.state in ("missing", "empty")

    def raise_unless_ready(self) -> None:
        if self.empty:
            raise TrackingStoreEmpty(self.message)
        if not self.ready:
            raise TrackingStoreNotReady(self.message)


Expectations = tuple[frozenset[str], str, frozenset[str]]
# what this MLflow expects of a store, kept so that readers need not import MLflow (~2 s)
MLFLOW_SCHEMA_SNAPSHOT = Path(__file__).resolve().parents[1] / "resources" / "mlflow_schema.json"


@lru_cache(maxsize=1)
def _mlflow_expectations() -> Expectations:
    """MLflow's table names, its head schema revision and every revision it knows: from the
    snapshot when it describes the installed MLflow, else from MLflow itself."""
    found = _snapshot_expectations(MLFLOW_SCHEMA_SNAPSHOT)
    return found if found is not None else mlflow_expectations()


def mlflow_expectations() -> Expectations:
    """The expectations read from MLflow itself (imports it: ~2 s)."""
    from mlflow.store.db import utils

    config = utils._get_alembic_config(db_url="")
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    known = frozenset(revision.revision for revision in script.walk_revisions())
    return frozenset(utils.Base.metadata.tables), utils._get_latest_schema_revision(), known


def mlflow_fingerprint() -> dict[str, object] | None:
    """The installed MLflow's version and its migration files' names, read without importing
    it (None when MLflow is not found)."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    try:
        spec = find_spec("mlflow")  # a top-level package: found, not imported
        release = version("mlflow")
    except (ImportError, PackageNotFoundError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "store/db_migrations/versions"
    try:
        files = sorted(p.name for p in folder.iterdir() if p.suffix == ".py")
    except OSError:
        return None
    return {"mlflow": release, "migrations": [f for f in files if f != "__init__.py"]}


def _snapshot_expectations(path: Path) -> Expectations | None:
    """The snapshot's expectations if it was taken of the installed MLflow (same version, same
    migration files), else None."""
    import json

    try:
        snapshot = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    installed = mlflow_fingerprint()
    if installed is None or {k: snapshot.get(k) for k in installed} != installed:
        return None
    return frozenset(snapshot["tables"]), snapshot["head"], frozenset(snapshot["known"])


def write_mlflow_snapshot(path: Path = MLFLOW_SCHEMA_SNAPSHOT) -> None:
    """Record the installed MLflow's expectations at ``path`` (after upgrading MLflow:
    ``python -m mlfactory.tracking._readonly``); written atomically."""
    import json
    import os

    tables, head, known = mlflow_expectations()
    snapshot = {**(mlflow_fingerprint() or {}), "head": head}
    snapshot |= {"tables": sorted(tables), "known": sorted(known)}
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(snapshot, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)


def tracking_state(settings: Settings) -> TrackingState:
    """Read (never write) whether the settings' tracking store can be read by this MLflow."""
    where = mask_url(settings.database_url)
    engine = readonly_engine(settings.database_url)
    if engine is None:
        return TrackingState("missing", f"no tracking store yet at {where}: nothing trained yet")
    with engine.connect() as connection:
        names = set(sa.inspect(connection).get_table_names())
        current = None
        if "alembic_version" in names:
            current = connection.execute(
                sa.text("select version_num from alembic_version")
            ).scalar()
    tables, head, known = _mlflow_expectations()
    if not names & tables:
        return TrackingState(
            "empty", f"the tracking store at {where} is empty: nothing trained yet"
        )
    if current == head and tables <= names:
        return TrackingState("ready", f"tracking store at {where}: MLflow schema {head}")
    if current is not None and current not in known:
        return TrackingState(
            "newer",
            f"the tracking store at {where} was written by a newer MLflow (schema revision "
            f"{current}, this one knows up to {head}): upgrade mlfactory to read it",
        )
    if current is None or current == head:
        return TrackingState(
            "incomplete",
            f"the tracking store at {where} lacks some of MLflow's tables: a writer "
            "(`mlfactory train`) or `mlflow db upgrade` completes it",
        )
    return TrackingState(
        "older",
        f"the tracking store at {where} holds an older MLflow schema (revision {current}, this "
        f"MLflow needs {head}): back it up, then run `mlflow db upgrade` on it",
    )


def readonly_tracking_uri(settings: Settings) -> str:
    """The settings' database as an MLflow tracking URI that cannot write."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").resolve()
        timeout = SQLITE_BUSY_TIMEOUT_MS // 1000
        return (
            f"sqlite+pysqlite:///file:{quote(path.as_posix())}?mode=ro&uri=true&timeout={timeout}"
        )
    options = url.query.get("options")
    options = f"{options} {READ_ONLY_OPTION}" if isinstance(options, str) else READ_ONLY_OPTION
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


if __name__ == "__main__":
    write_mlflow_snapshot()
    print(f"wrote {MLFLOW_SCHEMA_SNAPSHOT}")
