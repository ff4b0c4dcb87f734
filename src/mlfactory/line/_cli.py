"""What ``mlfactory models decisions`` prints (read-only: never creates or migrates)."""

from __future__ import annotations

import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlfactory.db import readonly_engine
from mlfactory.db._tables import PROMOTION_DECISIONS
from mlfactory.settings import Settings

__all__ = ["print_decisions"]


def print_decisions(
    settings: Settings, model: str, console: Console | None = None, *, as_json: bool = False
) -> None:
    """The gate's decisions about ``model``, newest first: a table, or JSON rows for scripts."""
    console = console or Console()
    engine = readonly_engine(settings.database_url)
    rows = []
    if engine is not None:
        try:
            rows = _read_decisions(engine, model)
        except sa.exc.OperationalError:  # no table yet (an older schema): no decisions
            rows = []
        except sa.exc.ProgrammingError:
            rows = []
    if as_json:
        import json
        import sys

        sys.stdout.write(json.dumps([dict(row) for row in rows], indent=2, default=str) + "\n")
        return
    if not rows:
        console.print(
            f"no promotion decisions for {model!r} yet: `mlfactory run LINE.toml` makes them"
        )
        return
    table = Table(title=f"promotion decisions: {model}")
    for column in ("id", "decided", "version", "champion", "verdict", "held-out", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        verdict = "PASS" if row["passed"] else "REJECT"
        if row["forced"]:
            verdict += f" (forced: {row['force_reason']})"
        table.add_row(
            str(row["id"]),
            f"{row['decided_at']:%Y-%m-%d %H:%M:%S}",
            f"v{row['version']}",
            f"v{row['champion_version']}" if row["champion_version"] else "none",
            verdict,
            f"{row['heldout_rows']} rows, sha256 {row['heldout_sha256'][:12]}",
            escape(row["reason"]),
        )
    console.print(table)


def _read_decisions(engine: sa.Engine, model: str) -> list[dict]:
    """``line._gate.read_decisions`` without importing the gate (numpy, pandas, scikit-learn:
    ~2.5 s of a command that reads a few rows; issue #21)."""
    table = PROMOTION_DECISIONS
    query = sa.select(table).where(table.c.model == model).order_by(table.c.id.desc())
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
