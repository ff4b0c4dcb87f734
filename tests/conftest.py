"""Shared fixtures: an isolated mlfactory home per test and a real PostgreSQL server."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from _postgres import PostgresServer, find_bindir
from _tools import require_tool
from threadpoolctl import threadpool_limits

from mlfactory.settings import get_settings

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 set, which Rich fixes as the console's
# size when the CLI's console is created; a test run in one process has neither. Workers behave
# as that one process does: each test's width is its own COLUMNS, else Rich's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)

# The tests fit models on a few hundred rows, two xdist workers to two shared cores: BLAS and
# OpenMP (HistGradientBoosting) pools of one thread, in this process and in every process a test
# starts, where a pool per core made each worker's threads spin against the other worker's (an
# OMP_NUM_THREADS already set is kept). Thread counts change no result the tests check.
if "OMP_NUM_THREADS" not in os.environ:
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
    threadpool_limits(1)  # the pools of the libraries loaded before this file


def pytest_configure(config: pytest.Config) -> None:
    """``--dist loadfile`` hands out modules in collection order, not xdist's default order (by
    number of tests, most first: the modules of one or two long tests came last)."""
    if getattr(config.option, "loadscopereorder", False):
        config.option.loadscopereorder = False  # as --no-loadscope-reorder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a ``slow`` test run first, then the others by number of tests, most first.

    ``--dist loadfile`` hands the workers one module at a time in collection order: a long
    module handed out last kept one worker busy for minutes after the other had finished. Run
    after pytest-randomly's shuffle (a wrapper), the sort is stable: the slow modules, and the
    others of as many tests, stay in its order."""
    modules = Counter(item.nodeid.split("::", 1)[0] for item in items)
    slow = {item.nodeid.split("::", 1)[0] for item in items if item.get_closest_marker("slow")}

    def order(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::", 1)[0]
        return (0, 0) if module in slow else (1, -modules[module])

    items.sort(key=order)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own working directory with no MLFACTORY_* configuration leaking in."""
    for name in list(os.environ):
        if name.startswith("MLFACTORY_") or name == "DASK_SCHEDULER_ADDRESS":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / ".mlfactory"
    monkeypatch.setenv("MLFACTORY_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


_MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _mlflow_uris() -> tuple[str | None, str | None]:
    """MLflow's process-wide tracking and registry URIs (None before mlflow is imported)."""
    tracking = sys.modules.get("mlflow.tracking._tracking_service.utils")
    registry = sys.modules.get("mlflow.tracking._model_registry.utils")
    return (
        getattr(tracking, "_tracking_uri", None),
        getattr(registry, "_registry_uri", None),
    )


@pytest.fixture(autouse=True)
def mlflow_uris_restored() -> Iterator[None]:
    """No test leaves MLflow's global tracking/registry URI (or ``MLFLOW_TRACKING_URI``, which
    ``mlflow.set_tracking_uri`` exports) pointing at its own store, e.g. a dropped database."""
    uris = _mlflow_uris()
    variables = {name: os.environ.get(name) for name in _MLFLOW_URI_VARIABLES}
    yield
    if _mlflow_uris() != uris:
        import mlflow.tracking._model_registry.utils as registry
        import mlflow.tracking._tracking_service.utils as tracking

        tracking._tracking_uri, registry._registry_uri = uris
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def mlfactory_logging_restored() -> Iterator[None]:
    """A test that runs the whole CLI configures the ``mlfactory`` logger (console at INFO on the
    stderr of the moment): undone afterwards, so that no later test sees its records."""
    logger = logging.getLogger("mlfactory")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server (the machine's version) for the whole test session.

    Without server binaries: skipped with the reason, a failure under ``CI=true``."""
    try:
        find_bindir()
    except RuntimeError:
        require_tool(
            "PostgreSQL server binaries (initdb, pg_ctl)", False, "apt-get install postgresql"
        )
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the real server for one test; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
