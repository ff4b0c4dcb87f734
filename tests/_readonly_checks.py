"""Proof that readers only read: a fingerprint of the store, and a walk over every dashboard page.

SQLite: the SHA-256 of every file of the home (the database and its WAL), except the logs and the
``-shm`` index (a memory-mapped lock table that SQLite's readers use by design); a WAL file with
no frame (0 bytes) counts as absent. PostgreSQL: every table and column of the schema, and an MD5
of every table's rows.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import sqlalchemy as sa

from mlfactory.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # starlette prefers httpx2; httpx still works
    from fastapi.testclient import TestClient

__all__ = ["browse_dashboard", "store_fingerprint"]


def _files(home: Path) -> dict[str, str]:
    found = {}
    if not home.exists():
        return found
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home).as_posix()
        if not path.is_file() or relative.startswith("logs/") or relative.endswith("-shm"):
            continue
        if relative.endswith("-wal") and path.stat().st_size == 0:
            continue
        found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _postgres(url: str) -> dict[str, object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            columns = connection.execute(
                sa.text(
                    "select table_schema, table_name, column_name, data_type "
                    "from information_schema.columns "
                    "where table_schema not in ('pg_catalog', 'information_schema') "
                    "order by 1, 2, 3"
                )
            ).all()
            tables = sorted({(schema, table) for schema, table, _, _ in columns})
            rows = {}
            for schema, table in tables:
                name = f'"{schema}"."{table}"'
                rows[f"{schema}.{table}"] = connection.execute(
                    sa.text(
                        f"select count(*), md5(coalesce(string_agg(t::text, '|' order by "
                        f"t::text), '')) from {name} t"
                    )
                ).one()
            indexes = connection.execute(
                sa.text("select schemaname, indexname from pg_indexes order by 1, 2")
            ).all()
    finally:
        engine.dispose()
    return {"columns": columns, "rows": rows, "indexes": indexes}


def store_fingerprint(settings: Settings) -> dict[str, object]:
    """Everything a reader must leave as it was (see the module's docstring)."""
    fingerprint: dict[str, object] = {"home": _files(settings.home)}
    if settings.database_backend == "postgresql":
        fingerprint["postgres"] = _postgres(settings.database_url)
    return fingerprint


def browse_dashboard(settings: Settings) -> dict[str, tuple[int, str]]:
    """GET every page of the dashboard (each link the pages hold, once): path -> (status, body)."""
    from mlfactory.dashboard import create_dashboard_app

    seen: dict[str, tuple[int, str]] = {}
    todo = ["/", "/health", "/data", "/experiments", "/models", "/monitoring"]
    todo += ["/experiments/nope", "/runs/" + "0" * 32, "/monitoring/reports/999999"]
    with TestClient(create_dashboard_app(settings)) as client:
        while todo:
            path = todo.pop(0)
            if path in seen or len(seen) > 300:
                continue
            response = client.get(path)
            body = response.text if "html" in response.headers.get("content-type", "") else ""
            seen[path] = (response.status_code, body)
            for link in re.findall(r'(?:href|src)="(/[^"#]*)"', body):
                link = link.replace("&amp;", "&")
                if link not in seen:
                    todo.append(link)
    return seen
