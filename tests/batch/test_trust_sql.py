"""``predict --sql`` only reads: one SELECT/WITH statement, on a read-only connection.

On real SQLite and real PostgreSQL: anything but a single query is refused with one line (exit 2)
before it runs; a query that would write anyway fails on the read-only connection; errors are one
line that never prints data rows; an empty result says so and writes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from mlfactory.exceptions import DataError

REFUSED = [
    "DELETE FROM applicants",
    "DROP TABLE applicants",
    "SELECT * FROM applicants; DROP TABLE applicants",
    "select * from applicants -- harmless\n; delete from applicants",
    "/* select */ UPDATE applicants SET age = 0",
    "WITH x AS (SELECT 1) DELETE FROM applicants",
    "WITH x AS (SELECT 1) UPDATE applicants SET age = 0",
    "CREATE TABLE copy AS SELECT * FROM applicants",
    "ATTACH DATABASE 'other.db' AS other",
    "PRAGMA query_only = OFF",
    "   ;  ",
]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, registered, tmp_path: Path) -> str:
    """A real database holding ``applicants`` (300 credit rows with an ``id`` key)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'source.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    registered.X.head(300).to_sql("applicants", engine, index=False)
    engine.dispose()
    return url


def _state(url: str) -> tuple[list[str], pd.DataFrame]:
    engine = sa.create_engine(url)
    try:
        tables = sorted(sa.inspect(engine).get_table_names())
        rows = pd.read_sql_query("select * from applicants order by id", engine)
    finally:
        engine.dispose()
    return tables, rows


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    return lines[0]


def _no_rows_in(line: str, registered) -> None:
    """No value of the input (ids, ages, probabilities) and none of SQLAlchemy's dumps."""
    assert "[SQL:" not in line and "[parameters:" not in line, line
    assert not re.search(r"\d\.\d{4,}", line), line
    for value in registered.X["id"].head(300).astype(str):
        assert not re.search(rf"\b{value}\b", line), line


def test_anything_but_one_query_is_refused_before_it_runs(
    run_predict, database: str, tmp_path: Path
) -> None:
    before = _state(database)
    for query in REFUSED:
        out = tmp_path / "out"
        result = run_predict("credit", "--sql", query, "--db-url", database, "--output", str(out))
        assert result.exit_code == 2, (query, result.output)
        line = _one_line(result)
        assert "SELECT" in line and "--sql" in line, line
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    tables, rows = _state(database)
    assert tables == before[0]
    pd.testing.assert_frame_equal(rows, before[1])


def test_a_query_that_writes_anyway_fails_on_the_read_only_connection(
    run_predict, registered, postgres_url: str, tmp_path: Path
) -> None:
    """A data-modifying CTE or a function that deletes passes the one-SELECT check; PostgreSQL's
    read-only transaction stops it and the table is unchanged."""
    engine = sa.create_engine(postgres_url)
    registered.X.head(300).to_sql("applicants", engine, index=False)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION wipe() RETURNS integer AS "
            "$$ DELETE FROM applicants; SELECT 1 $$ LANGUAGE sql"
        )
    engine.dispose()
    before = _state(postgres_url)
    for query in (
        "WITH d AS (DELETE FROM applicants RETURNING *) SELECT * FROM d",
        "SELECT a.*, wipe() AS w FROM applicants a",
        "SELECT *, setval('nothing', 1) FROM applicants",
        "SELECT * INTO stolen FROM applicants",
    ):
        result = run_predict(
            "credit", "--sql", query, "--db-url", postgres_url, "--output", str(tmp_path / "o")
        )
        assert result.exit_code != 0, (query, result.output)
        line = _one_line(result)
        assert "query failed" in line or "refused" in line, line
        _no_rows_in(line, registered)
        assert not (tmp_path / "o").exists()
    tables, rows = _state(postgres_url)
    assert tables == before[0]
    pd.testing.assert_frame_equal(rows, before[1])


def test_sqlite_input_is_opened_read_only(registered, tmp_path: Path) -> None:
    """Even a statement that bypassed the check cannot write, and a missing file is not created."""
    from mlfactory.batch._sql import read_only_connection

    url = f"sqlite:///{tmp_path / 'source.db'}"
    engine = sa.create_engine(url)
    registered.X.head(10).to_sql("applicants", engine, index=False)
    engine.dispose()
    with (
        read_only_connection(url) as connection,
        pytest.raises(sa.exc.OperationalError, match="readonly database"),
    ):
        connection.exec_driver_sql("DELETE FROM applicants")
    assert len(_state(url)[1]) == 10
    missing = tmp_path / "nope" / "missing.db"
    with (
        pytest.raises(DataError, match=r"input database .*missing\.db not found"),
        read_only_connection(f"sqlite:///{missing}"),
    ):
        pass
    assert not missing.parent.exists()


def test_query_errors_are_one_line_without_rows(
    run_predict, registered, database: str, tmp_path: Path
) -> None:
    out = str(tmp_path / "out")
    result = run_predict(
        "credit", "--sql", "select * from nope", "--db-url", database, "--output", out
    )
    assert result.exit_code == 1
    line = _one_line(result)
    assert "the --sql query failed" in line and "nope" in line, line
    # an error in a later chunk (ids above 1250), after partitions were scored: still one
    # line, and no output (SQLite divides by zero into NULL: it fails on malformed JSON instead)
    boom = "json_extract('{', '$')" if database.startswith("sqlite") else "1 / (id - id)"
    failing = f"select *, case when id > 1250 then {boom} end as boom from applicants order by id"
    result = run_predict(
        "credit", "--sql", failing, "--db-url", database, "--output", out, "--partition-rows", "50"
    )
    assert result.exit_code == 1, result.output
    _no_rows_in(_one_line(result), registered)
    assert not Path(out).exists()


def test_incompatible_or_constrained_table_is_one_line(
    run_predict, registered, database: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(database)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE old_scores (id integer, label text)")
        connection.exec_driver_sql(
            "CREATE TABLE scores (id bigint UNIQUE, prediction bigint, proba_0 float, "
            "proba_1 float, model_version text, scored_at timestamp)"
        )
        connection.exec_driver_sql("INSERT INTO scores (id, prediction) VALUES (1000 + 7, 0)")
    engine.dispose()
    query = "select * from applicants"
    result = run_predict(
        "credit",
        "--sql",
        query,
        "--db-url",
        database,
        "--table",
        "old_scores",
        "--key-columns",
        "id",
    )
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert "old_scores" in line and "lacks id" not in line and "prediction" in line, line
    assert "nothing was written" in line
    result = run_predict(
        "credit", "--sql", query, "--db-url", database, "--table", "scores", "--key-columns", "id"
    )
    assert result.exit_code == 1, result.output
    line = _one_line(result)
    assert "scores" in line and "failed" in line, line
    _no_rows_in(line.replace("1007", ""), registered)  # the DB may name the duplicate key
    engine = sa.create_engine(database)
    try:
        assert pd.read_sql_query("select count(*) as n from old_scores", engine)["n"][0] == 0
        assert pd.read_sql_query("select count(*) as n from scores", engine)["n"][0] == 1
    finally:
        engine.dispose()


def test_empty_result_writes_nothing(run_predict, database: str, tmp_path: Path) -> None:
    query = "select * from applicants where id < 0"
    out = tmp_path / "out"
    result = run_predict("credit", "--sql", query, "--db-url", database, "--output", str(out))
    assert result.exit_code == 1
    assert "the query returned no rows" in _one_line(result)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    result = run_predict("credit", "--sql", query, "--db-url", database, "--table", "scores")
    assert result.exit_code == 1
    assert "the query returned no rows" in _one_line(result)
    assert "scores" not in _state(database)[0]
