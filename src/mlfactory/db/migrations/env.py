"""Alembic environment of mlfactory's own tables (run by mlfactory.db.upgrade_schema only)."""

from __future__ import annotations

from alembic import context

from mlfactory.db._schema import VERSION_TABLE
from mlfactory.db._tables import METADATA

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=METADATA,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
