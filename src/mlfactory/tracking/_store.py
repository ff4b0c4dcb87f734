"""MLflow on the settings' database: the tracking URI and the store's one-time initialisation.

The store is initialised once under a cross-process lock (a file lock for SQLite, an advisory lock
for PostgreSQL), so that many ``mlfactory train`` processes starting at the same time on a fresh
database do not race each other through MLflow's schema migrations.
"""

from __future__ import annotations

import fcntl
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mlfactory.db import SQLITE_BUSY_TIMEOUT_MS, get_engine
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, apply_telemetry_policy

if TYPE_CHECKING:  # MLflow (~2 s) loads when a client is opened: not to find the store empty
    from mlflow.tracking import MlflowClient

__all__ = [
    "experiment_for",
    "open_tracking",
    "retry_on_locked",
    "tracking_uri",
]

logger = get_logger(__name__)
_ADVISORY_LOCK_KEY = 0x6D6C6661  # "mlfa"
_initialised: set[str] = set()
T = TypeVar("T")


def tracking_uri(settings: Settings) -> str:
    """The MLflow tracking URI: the settings' database (SQLite gets a long busy timeout)."""
    url = settings.database_url
    if make_url(url).get_backend_name() == "sqlite":
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}timeout={SQLITE_BUSY_TIMEOUT_MS // 1000}"
    return url


@contextmanager
def _init_lock(settings: Settings) -> Iterator[None]:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        lock_path = Path(f"{url.database}.init.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    engine = get_engine(settings.database_url)
    with engine.connect() as connection:
        connection.execute(sa.text("select pg_advisory_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK_KEY})
            connection.commit()


def open_tracking(settings: Settings, *, read_only: bool = False) -> MlflowClient:
    """An MLflow client on the settings' database, creating MLflow's and mlfactory's tables once.

    ``read_only`` (readers: dashboard, ``runs list``, ``models list``...) creates nothing and
    writes nothing: the store's state is read first (:class:`TrackingStoreEmpty` when there is
    nothing yet, :class:`TrackingStoreNotReady` for a schema this MLflow cannot read), then MLflow
    is opened through a connection that cannot write. MLflow's global URIs are left alone.
    """
    apply_telemetry_policy(settings)
    if read_only:
        from mlfactory.tracking._readonly import readonly_tracking_uri, tracking_state

        tracking_state(settings).raise_unless_ready()
        from mlflow.tracking import MlflowClient

        uri = readonly_tracking_uri(settings)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    settings.ensure_dirs()
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(settings)
    if uri not in _initialised:
        with _init_lock(settings):
            # Our engine turns WAL on for SQLite; the mode is stored in the file, so MLflow's
            # own connections use it too.
            with get_engine(settings.database_url).connect():
                pass
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # forces schema creation / migration
            from mlfactory.tracking._results import create_results_tables

            create_results_tables(get_engine(settings.database_url))
        _initialised.add(uri)
    # MLflow's registry resolves models:/ sources with a default client: point it here too.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_for(client: MlflowClient, name: str, settings: Settings) -> str:
    """Id of experiment ``name``, created with its artifacts under the settings' artifact root."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = f"{settings.artifact_uri}/{_safe_name(name)}"
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def retry_on_locked(func: Callable[[], T], attempts: int = 8) -> T:
    """Call ``func`` again, with jittered backoff, while SQLite says the database is locked."""
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except Exception as exc:
            if "database is locked" not in str(exc) or attempt == attempts:
                raise
            delay = min(5.0, 0.1 * 2**attempt) * (0.5 + random.random())
            logger.debug("database is locked; retry %d in %.2fs", attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
