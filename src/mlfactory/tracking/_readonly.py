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


@lru_cache(maxsize=1)
def _mlflow_expectations() -> tuple[frozenset[str], str, frozenset[str]]:
    """MLflow's table names, its head schema revision and every revision it knows."""
    from mlflow.store.db import utils

    config = utils._get_alembic_config(db_url="")
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    known = frozenset(revision.revision for revision in script.walk_revisions())
    return frozenset(utils.Base.metadata.tables), utils._get_latest_schema_revision(), known


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
