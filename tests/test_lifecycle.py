"""The whole life of a model on one database, SQLite or a real PostgreSQL server.

train -> promote -> serve (requests logged) -> predict to a table -> explain -> monitor model ->
dashboard pages, through the commands a user types (the service through real uvicorn). With
PostgreSQL, tracking, registry, results tables, prediction log, scored table and drift reports all
land there, and no SQLite file appears in the home. Readers leave the store as it was.
"""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa
from _readonly_checks import browse_dashboard, store_fingerprint
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import load_dataset, write_synthetic
from mlfactory.db import readonly_engine
from mlfactory.serving import BackgroundServer, create_app
from mlfactory.settings import load_settings

runner = CliRunner()

SPEC = """
name = "credit-life"
dataset = "credit"
preprocessing = "power"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "grid"
param_grid = {clf__C = [0.1, 1.0]}
"""


def _ok(*args: str, codes: tuple[int, ...] = (0,)) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code in codes, f"mlfactory {' '.join(args)}:\n{result.output}"
    return result.output


def _count(url: str, table: str) -> int:
    with readonly_engine(url).connect() as connection:
        return int(connection.execute(sa.text(f"select count(*) from {table}")).scalar())


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_model_lifecycle_on_one_database(backend, tmp_path, isolated_home, monkeypatch, request):
    if backend == "postgres":
        monkeypatch.setenv("MLFACTORY_DB_URL", request.getfixturevalue("postgres_url"))
    settings = load_settings()
    url = settings.database_url
    write_synthetic("credit", 1200, settings=settings)
    spec = tmp_path / "credit.toml"
    spec.write_text(SPEC)

    # train, promote
    _ok("train", str(spec))
    _ok("promote", "--best", "credit-life", "--name", "credit")
    assert _count(url, "runs") >= 3 and _count(url, "model_versions") == 1
    assert _count(url, "cv_fold_results") > 0 and _count(url, "tuning_results") > 0

    # serve: real uvicorn, requests logged in the same database
    X = load_dataset("credit", settings=settings).X.head(60)
    rows = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in X.astype(object).to_dict(orient="records")
    ]
    service = create_app(settings, "credit", log_flush_interval_s=0.1)
    with BackgroundServer(service) as server, httpx.Client(base_url=server.url) as http:
        for start in range(0, len(rows), 20):
            response = http.post("/predict", json=rows[start : start + 20], timeout=30)
            assert response.status_code == 200, response.text
        assert _wait_for(lambda: _count(url, "prediction_requests") == 3)

    # predict to a table, explain, monitor the served model
    data = tmp_path / "to_score.parquet"
    X.to_parquet(data)
    _ok("predict", "credit", "--input", str(data), "--table", "scored")
    assert _count(url, "scored") == len(X)
    _ok("explain", "credit@champion", "--max-rows", "60", "--n-repeats", "2",
        "--out", str(tmp_path / "explain"))  # fmt: skip
    assert (tmp_path / "explain" / "report.html").is_file()
    _ok("monitor", "model", "credit", "--since", "1h", "--out", str(tmp_path / "drift"),
        codes=(0, 1))  # fmt: skip
    assert _count(url, "drift_reports") == 1

    # the dashboard and the reader commands show it all, and change nothing
    before = store_fingerprint(settings)
    pages = browse_dashboard(settings)
    failed = {path: status for path, (status, _) in pages.items() if status != 200}
    assert set(failed) == {"/experiments/nope", "/runs/" + "0" * 32, "/monitoring/reports/999999"}
    assert "credit-life" in pages["/experiments"][1]
    assert 'data-model="credit"' in pages["/models"][1]
    assert "explain-link" in pages["/models"][1]  # the explain report, reachable from the page
    assert any(p.startswith("/monitoring/reports/") for p in pages)
    _ok("runs", "list")
    _ok("models", "show", "credit")
    _ok("info")
    assert store_fingerprint(settings) == before

    if backend == "postgres":  # nothing fell back to the home's SQLite file
        assert not list(settings.home.glob("*.db"))
