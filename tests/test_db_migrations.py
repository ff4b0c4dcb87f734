"""mlfactory's tables move by Alembic migrations in their own version table (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import (
    PREDICTION_REQUESTS,
    TUNING_RESULTS,
    VERSION_TABLE,
    ensure_schema,
    get_engine,
    head_revision,
    readonly_engine,
    schema_status,
    upgrade_schema,
)
from mlfactory.exceptions import ConfigError
from mlfactory.prediction_log import read_prediction_log
from mlfactory.tracking import append_rows

runner = CliRunner()
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_previous_layout(engine: sa.Engine) -> None:
    """The tables as mlfactory created them before migrations: ad hoc, with the old prediction_log
    (one row per record) holding two requests of 2 and 1 records."""
    metadata = sa.MetaData()
    old = sa.Table(
        "prediction_log",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_index", sa.Integer, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("prediction", sa.JSON, nullable=False),
        sa.Column("probabilities", sa.JSON, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
    )
    sa.Table(  # an ad hoc results table, already holding a row
        "tuning_results", metadata, *[c.copy() for c in TUNING_RESULTS.columns]
    )
    metadata.create_all(engine)
    rows = [
        ("r1", 1, {"age": 30, "income": 1.5}, 0, {"0": 0.9, "1": 0.1}),
        ("r1", 0, {"age": 41, "income": None}, 1, {"0": 0.2, "1": 0.8}),
        ("r2", 0, {"age": 52, "income": 3.0}, 1, {"0": 0.4, "1": 0.6}),
    ]
    with engine.begin() as connection:
        connection.execute(
            old.insert(),
            [
                {
                    "request_id": request,
                    "model_name": "credit",
                    "model_version": "3",
                    "received_at": T0 + timedelta(seconds=int(request[1])),
                    "row_index": index,
                    "inputs": inputs,
                    "prediction": label,
                    "probabilities": probabilities,
                    "latency_ms": 0.5,
                }
                for request, index, inputs, label, probabilities in rows
            ],
        )
        connection.execute(
            metadata.tables["tuning_results"].insert(),
            [{"run_id": "a" * 32, "experiment": "e", "cell": "c", "candidate": 0,
              "metric": "roc_auc", "status": "ok", "params": "{}", "recorded_at": T0}],
        )  # fmt: skip


def _check_carried(engine: sa.Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert "prediction_log" not in names and VERSION_TABLE in names
    assert "alembic_version" not in names  # MLflow's own version table is never touched
    with engine.connect() as connection:
        requests = connection.execute(
            sa.select(PREDICTION_REQUESTS).order_by(PREDICTION_REQUESTS.c.request_id)
        ).all()
        kept = connection.execute(sa.select(sa.func.count()).select_from(TUNING_RESULTS)).scalar()
    assert [r.records for r in requests] == [2, 1] and kept == 1
    first = requests[0]
    assert first.inputs == {"age": [41, 30], "income": [None, 1.5]}  # row_index order
    assert first.predictions == [1, 0]
    assert first.probabilities == {"0": [0.2, 0.9], "1": [0.8, 0.1]}
    logged = read_prediction_log(engine, "credit")
    assert len(logged) == 3 and logged["age"].tolist() == [41, 30, 52]


def test_sqlite_previous_layout_is_carried_over_by_db_upgrade(tmp_path, isolated_home):
    engine = get_engine(f"sqlite:///{isolated_home / 'mlfactory.db'}")
    isolated_home.mkdir(parents=True, exist_ok=True)
    make_previous_layout(engine)
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 3 and f"upgrade pending to {head_revision()}" in status.output
    info = runner.invoke(app, ["info"])
    assert "mlfactory db upgrade" in re.sub(r"[│\s]+", " ", info.output)
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"(none) -> {head_revision()}" in upgraded.output
    _check_carried(engine)
    status = runner.invoke(app, ["db", "status", "--json"])
    assert status.exit_code == 0
    assert json.loads(status.stdout)["revision"] == head_revision()
    again = runner.invoke(app, ["db", "upgrade"])
    assert f"already at revision {head_revision()}" in again.output
    assert runner.invoke(app, ["db", "status"]).exit_code == 0


def test_sqlite_writers_upgrade_by_themselves(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'w.db'}")
    make_previous_layout(engine)
    append_rows(engine, TUNING_RESULTS, [])  # nothing to write: no upgrade needed
    ensure_schema(engine)
    _check_carried(engine)
    assert schema_status(engine).current == head_revision()


@pytest.mark.postgres
def test_postgresql_writers_refuse_an_old_schema_until_upgraded(postgres_url):
    engine = get_engine(postgres_url)
    make_previous_layout(engine)
    row = {"run_id": "b" * 32, "experiment": "e", "cell": "c", "candidate": 1,
           "metric": "roc_auc", "status": "ok", "params": "{}"}  # fmt: skip
    with pytest.raises(ConfigError, match="mlfactory db upgrade"):
        append_rows(engine, TUNING_RESULTS, [row])
    assert "prediction_log" in sa.inspect(engine).get_table_names()  # untouched
    upgrade_schema(engine)
    _check_carried(engine)
    assert append_rows(engine, TUNING_RESULTS, [row]) == 1


@pytest.mark.postgres
def test_postgresql_empty_database_gets_the_schema_on_first_write(postgres_url):
    engine = get_engine(postgres_url)
    assert schema_status(engine).empty
    ensure_schema(engine)
    assert schema_status(engine).up_to_date


def test_readers_never_create_the_database_or_a_table(tmp_path):
    path = tmp_path / "absent.db"
    assert readonly_engine(f"sqlite:///{path}") is None and not path.exists()
    engine = get_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.connect() as connection:
        connection.exec_driver_sql("select 1")
    before = (tmp_path / "empty.db").read_bytes()
    reader = readonly_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert read_prediction_log(reader, "credit").empty
    assert schema_status(reader).empty
    with pytest.raises(sa.exc.OperationalError, match="readonly"), reader.begin() as connection:
        connection.exec_driver_sql("create table x (a int)")
    assert (tmp_path / "empty.db").read_bytes() == before


def test_the_schema_is_read_without_alembic_and_as_alembic_reads_it(tmp_path) -> None:
    """A writer at head checks the schema with one SELECT and the revision files' headers
    (Alembic costs ~0.25 s to import); both agree with Alembic's own readings."""
    import subprocess
    import sys

    from alembic.runtime.migration import MigrationContext

    from mlfactory.db._schema import _alembic_head

    assert head_revision() == _alembic_head()
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = get_engine(url)
    upgrade_schema(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert schema_status(engine).current == context.get_current_revision() == head_revision()
    probe = (
        "import sys; from mlfactory.db import ensure_schema, get_engine; "
        f"ensure_schema(get_engine({url!r})); "
        "print(sorted(m for m in sys.modules if 'alembic' in m))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
