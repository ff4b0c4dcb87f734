import pytest
import sqlalchemy as sa

from mlfactory.db import check_database, get_engine

pytestmark = pytest.mark.postgres


def test_fixture_is_a_real_server(postgres_url, postgres_server):
    engine = get_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("create table t (id int primary key, name text)")
        connection.execute(sa.text("insert into t values (1, 'a'), (2, 'b')"))
    with engine.connect() as connection:
        rows = connection.execute(sa.text("select id, name from t order by id")).all()
        version = connection.exec_driver_sql("show server_version").scalar()
    assert rows == [(1, "a"), (2, "b")]
    assert version.split(".")[0] == postgres_server.major_version  # no version hard-coded
    engine.dispose()


def test_check_database_on_postgres(postgres_url, postgres_server):
    status = check_database(postgres_url)
    assert status.reachable, status.detail
    assert f"PostgreSQL {postgres_server.major_version}." in status.detail
    assert postgres_server.password not in status.url

    wrong = postgres_url.replace(postgres_server.password, "wrong-password")
    status = check_database(wrong)
    assert not status.reachable
    assert "password authentication failed" in status.detail
    assert "wrong-password" not in status.detail + status.url


def test_sqlite_engine_uses_wal(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("pragma busy_timeout").scalar() == 60000
    engine.dispose()
