"""The read-only sqlite3 path of a rerun with nothing to do (issue #18): when it answers."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mlfactory.db import ensure_schema, get_engine, head_revision
from mlfactory.line._sqlite import head_revision as light_head_revision
from mlfactory.line._sqlite import open_records, sqlite_path


def test_the_light_head_revision_is_the_schema_modules(isolated_home) -> None:
    assert light_head_revision() == head_revision()


def test_only_a_plain_local_sqlite_file_is_read_without_sqlalchemy() -> None:
    assert sqlite_path("sqlite:////tmp/a/mlfactory.db") == Path("/tmp/a/mlfactory.db")
    assert sqlite_path("sqlite:///rel.db") == Path("rel.db")
    assert sqlite_path("postgresql+psycopg://u:p@host/db") is None
    assert sqlite_path("sqlite:///file.db?mode=ro&uri=true") is None
    assert sqlite_path("sqlite:///a%20b.db") is None
    assert sqlite_path("sqlite://") is None and sqlite_path("sqlite:///:memory:") is None


def test_an_old_schema_or_a_held_lock_leaves_the_line_to_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mlfactory.db'}"
    assert open_records(url, "l") is None  # no database yet: the full walk creates it
    engine = get_engine(url)
    ensure_schema(engine)
    reader = open_records(url, "l")
    assert reader is not None and reader.latest("l", "train") is None
    reader.close()
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO line_locks VALUES ('l', 'h:1', '2026-01-01')"))
    assert open_records(url, "l") is None  # held: the full walk waits or says who holds it
    assert open_records(url, "other") is not None  # another line's lock does not matter
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM line_locks"))
        connection.execute(sa.text("UPDATE mlfactory_alembic_version SET version_num = 'old'"))
    assert open_records(url, "l") is None  # not at head: the full walk upgrades it
