"""SQL database access: engines, mlfactory's tables and their migrations.

SQLite (the embedded default) is opened in WAL mode with a busy timeout so that several
processes can write at once; PostgreSQL is used as it is. mlfactory's own tables are declared in
:mod:`mlfactory.db._tables` and moved only by the Alembic revisions in ``migrations/``.
"""

from mlfactory.db._engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    DatabaseStatus,
    check_database,
    check_sqlite_file,
    get_engine,
    not_a_database_error,
    readonly_engine,
)
from mlfactory.db._schema import (
    VERSION_TABLE,
    SchemaStatus,
    ensure_schema,
    head_revision,
    schema_status,
    upgrade_schema,
)
from mlfactory.db._tables import (
    CV_FOLD_RESULTS,
    DRIFT_REPORTS,
    METADATA,
    PREDICTION_REQUESTS,
    TUNING_RESULTS,
)

__all__ = [
    "CV_FOLD_RESULTS",
    "DRIFT_REPORTS",
    "METADATA",
    "PREDICTION_REQUESTS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "TUNING_RESULTS",
    "VERSION_TABLE",
    "DatabaseStatus",
    "SchemaStatus",
    "check_database",
    "check_sqlite_file",
    "ensure_schema",
    "get_engine",
    "head_revision",
    "not_a_database_error",
    "readonly_engine",
    "schema_status",
    "upgrade_schema",
]
