"""Trust / secrets: a database password in a spec's URL never lands anywhere.

A real train reads its dataset over SQL from a real PostgreSQL database whose role has a
password; afterwards the password is in no byte of the home (MLflow's SQLite database, every
artifact, the log files), in no CLI output (train, runs show, spec show, info) and on no
dashboard page.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.dashboard import create_dashboard_app
from mlfactory.settings import load_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # starlette prefers httpx2; httpx still works
    from fastapi.testclient import TestClient

PASSWORD = "S3cretPassw0rd"
ROLE = "loan_reader"

SPEC = """
# credit-like loans read over SQL
name = "{name}"
preprocessing = "basic"
model = "LogisticRegression"
seed = 0
[dataset]
sql = "select * from loans"
url = "{url}"
target = "default"
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "none"
"""


def _loans(rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    age = rng.integers(21, 70, rows)
    income = rng.lognormal(8, 0.5, rows).round(2)
    debt_ratio = rng.uniform(0, 1.5, rows).round(3)
    purpose = rng.choice(["car", "home", "education"], rows)
    risk = debt_ratio * 2 - (age - 45) / 20 + rng.normal(0, 0.5, rows)
    default = (risk > np.median(risk)).astype(int)
    return pd.DataFrame(
        {"age": age, "income": income, "debt_ratio": debt_ratio, "purpose": purpose,
         "default": default}
    )  # fmt: skip


@pytest.fixture
def loans_db(postgres_url: str) -> str:
    """A table of loans readable by a role that logs in with PASSWORD; its URL without one."""
    admin = sa.create_engine(postgres_url)
    url = sa.make_url(postgres_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP ROLE IF EXISTS {ROLE}")
        connection.exec_driver_sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        _loans().to_sql("loans", connection, index=False)
        connection.exec_driver_sql(f"GRANT SELECT ON loans TO {ROLE}")
        connection.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{url.database}" TO {ROLE}')
    try:
        yield f"{url.drivername}://{ROLE}@{url.host}:{url.port}/{url.database}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS loans")
            connection.exec_driver_sql(f'REVOKE ALL ON DATABASE "{url.database}" FROM {ROLE}')
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {ROLE}")
        admin.dispose()


def _leaks(home: Path) -> list[str]:
    """Every file under the home whose bytes hold the password."""
    return [
        str(path.relative_to(home))
        for path in home.rglob("*")
        if path.is_file() and PASSWORD.encode() in path.read_bytes()
    ]


def _invoke(args: list[str], **env: str) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400", **env})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.postgres
def test_a_password_in_the_dataset_url_lands_nowhere(loans_db, isolated_home, tmp_path):
    base = loans_db
    in_userinfo = base.replace(f"{ROLE}@", f"{ROLE}:{PASSWORD}@")
    in_query = f"{base}?sslmode=disable&password={PASSWORD}"
    assert sa.make_url(in_userinfo).password == PASSWORD
    spec = tmp_path / "loans.toml"
    spec.write_text(SPEC.format(name="loans-sql", url=in_userinfo))

    outputs = [_invoke(["--log-level", "DEBUG", "spec", "show", str(spec)])]
    outputs.append(_invoke(["--log-level", "DEBUG", "train", str(spec)]))
    first_run = re.search(r"run: ([0-9a-f]{32})", outputs[-1])[1]
    # the same spec with the password in the URL's query, given as a command-line override
    outputs.append(
        _invoke(["--log-level", "DEBUG", "train", str(spec), "--set", f"dataset.url={in_query}"])
    )
    second_run = re.search(r"run: ([0-9a-f]{32})", outputs[-1])[1]
    for run_id in (first_run, second_run):
        outputs.append(_invoke(["runs", "show", run_id]))
    outputs.append(_invoke(["runs", "compare", first_run, second_run]))
    outputs.append(_invoke(["info"], MLFACTORY_DB_URL=in_query))
    outputs.append(_invoke(["info"], MLFACTORY_DB_URL=in_userinfo))

    for output in outputs:
        assert PASSWORD not in output
    shown = outputs[3]  # runs show of the first run: the URL is there, masked
    assert f"{ROLE}:***@" in shown and "dataset.url" in shown
    assert "password=***" in outputs[4]
    assert "reachable" in outputs[-1]  # info really connected with the password

    settings = load_settings()
    with TestClient(create_dashboard_app(settings)) as page:
        for run_id in (first_run, second_run):
            html = page.get(f"/runs/{run_id}").text
            assert "loans-sql" in html and PASSWORD not in html
            stored = page.get(f"/runs/{run_id}/artifacts/spec/loans.toml")
            assert stored.status_code == 200 and PASSWORD not in stored.text
            assert "# credit-like loans read over SQL" in stored.text  # the masked file itself
            assert f"{ROLE}:***@" in stored.text
            resolved = page.get(f"/runs/{run_id}/artifacts/spec/resolved_spec.json")
            assert resolved.status_code == 200 and PASSWORD not in resolved.text
    assert list((isolated_home / "logs").glob("*.log")), "the CLI wrote no log file"
    assert _leaks(isolated_home) == []
