"""``mlfactory db …``: the schema of mlfactory's own tables (results, prediction log, reports)."""

from __future__ import annotations

import typer

from mlfactory.cli._common import console, current_settings
from mlfactory.cli._ids import JsonOption, print_json

db_app = typer.Typer(help="mlfactory's own tables: schema revision and upgrades (Alembic).")


@db_app.command("status")
def status_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Say which schema revision the database holds and whether an upgrade is pending (reads only).

    Exits 0 when up to date, 3 when an upgrade is pending or the database is empty.
    """
    from mlfactory.db import head_revision, readonly_engine, schema_status
    from mlfactory.settings import mask_url

    settings = current_settings(ctx)
    where = mask_url(settings.database_url)
    engine = readonly_engine(settings.database_url)
    status = schema_status(engine) if engine is not None else None
    head = head_revision()
    if as_json:
        print_json(
            {
                "database": where,
                "exists": status is not None,
                "revision": status.current if status else None,
                "head": head,
                "tables": list(status.tables) if status else [],
                "up_to_date": bool(status and status.up_to_date),
            }
        )
    elif status is None:
        console.print(f"{where}: no database yet (head revision {head})")
    else:
        console.print(f"{where}: mlfactory schema {status.describe()}")
    if status is None or not status.up_to_date:
        raise typer.Exit(3)


@db_app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Apply pending migrations of mlfactory's tables, in one transaction.

    On the embedded SQLite default writers do this by themselves; on PostgreSQL a team runs it on
    purpose after upgrading mlfactory. MLflow's own tables are migrated by `mlflow db upgrade`.
    """
    from mlfactory.db import get_engine, schema_status, upgrade_schema
    from mlfactory.settings import mask_url

    settings = current_settings(ctx)
    engine = get_engine(settings.database_url)
    before = schema_status(engine)
    after = upgrade_schema(engine)
    where = mask_url(settings.database_url)
    if before.current == after.current:
        console.print(f"{where}: mlfactory schema already at revision {after.current}")
    else:
        console.print(
            f"{where}: mlfactory schema upgraded {before.current or '(none)'} -> {after.current}"
        )
