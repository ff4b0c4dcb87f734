"""The dashboard in process (FastAPI TestClient): every page, sorting, artifacts, errors, auth."""

from __future__ import annotations

import base64
import re
import warnings

import pytest
import sqlalchemy as sa
from _dashboard_factory import DRIFT_COLUMNS, Factory, save_planted_drift_reports

from mlfactory.dashboard import create_dashboard_app, resolve_artifact
from mlfactory.db import get_engine
from mlfactory.exceptions import ModelNotFound
from mlfactory.settings import load_settings
from mlfactory.tracking import open_tracking
from mlfactory.tracking._queries import list_runs

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # starlette prefers httpx2; httpx still works
    from fastapi.testclient import TestClient


def _client(settings, **kwargs) -> TestClient:
    return TestClient(create_dashboard_app(settings, **kwargs))


@pytest.fixture(scope="module")
def client(factory: Factory):
    with _client(factory.settings, mlflow_url="http://mlflow.example:5000/") as test_client:
        yield test_client


def _cells(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
        if "<td" in r
    ]


def _pairs(html: str, table_id: str) -> dict[str, str]:
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    return dict(re.findall(r"<tr><th>(.*?)</th><td[^>]*>(.*?)</td></tr>", body, re.S))


def test_empty_home_pages_say_what_to_do_and_create_no_drift_table(isolated_home):
    settings = load_settings()
    with _client(settings) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/data"
        assert "No prices ingested yet" in client.get("/data").text
        assert "No experiments yet" in client.get("/experiments").text
        assert "No registered models yet" in client.get("/models").text
        page = client.get("/monitoring")
        assert page.status_code == 200 and "No drift reports yet" in page.text
    assert not sa.inspect(get_engine(settings.database_url)).has_table("drift_reports")


def test_data_page_lists_the_store(client, factory):
    html = client.get("/data").text
    rows = _cells(html, "tickers")
    assert [r[0] for r in rows] == factory.tickers
    status = (
        __import__("mlfactory.data", fromlist=["BronzeStore"])
        .BronzeStore.from_settings(factory.settings)
        .status()
    )
    for row, ticker in zip(rows, status.tickers, strict=True):
        assert row[1:5] == [
            str(ticker.first),
            str(ticker.last),
            str(ticker.partitions),
            f"{ticker.rows:,}",
        ]
    assert row[1] == "2024-01-01" and row[3] == "2"  # two yearly partitions
    assert "synthetic" in html and status.last_ingest["last_ingest"] in html


def test_leaderboard_sorts_server_side(client, factory):
    html = client.get("/experiments").text
    assert 'href="/experiments/cancer"' in html
    frame = list_runs(open_tracking(factory.settings), "cancer")
    for desc in (1, 0):
        page = client.get("/experiments/cancer", params={"sort": "test_roc_auc", "desc": desc})
        assert page.status_code == 200
        ids = re.findall(r'<tr data-run-id="(\w+)">', page.text)
        expected = frame.sort_values("test_roc_auc", ascending=not desc, kind="stable")
        assert ids == list(expected["run_id"])
        # the sorted column's header link flips the direction
        flipped = 0 if desc else 1
        assert f'href="?sort=test_roc_auc&amp;desc={flipped}" class="sorted"' in page.text
    assert set(ids) == {factory.result.run_id, *(cell.run_id for cell in factory.result.cells)}
    default = client.get("/experiments/cancer").text
    assert re.findall(r'<tr data-run-id="(\w+)">', default)[0] == expected["run_id"].iloc[-1]


def test_bad_sort_column_and_unknown_experiment(client):
    page = client.get("/experiments/cancer", params={"sort": "nope"})
    assert page.status_code == 400
    assert "cannot sort by &#39;nope&#39;" in page.text and "test_roc_auc" in page.text
    flag = client.get("/experiments/cancer", params={"desc": "maybe"})
    assert flag.status_code == 400 and "desc: Input should be a valid integer" in flag.text
    report = client.get("/monitoring/reports/latest")
    assert report.status_code == 400 and "report_id" in report.text
    missing = client.get("/experiments/absent")
    assert missing.status_code == 404 and "experiment &#39;absent&#39; not found" in missing.text


def test_run_page_shows_params_metrics_tags_and_evaluation(client, factory):
    cell = factory.result.cells[0]
    page = client.get(f"/runs/{cell.run_id}")
    assert page.status_code == 200
    metrics = _pairs(page.text, "metrics")
    run = open_tracking(factory.settings).get_run(cell.run_id)
    assert float(metrics["test_roc_auc"]) == pytest.approx(
        run.data.metrics["test_roc_auc"], abs=1e-4
    )
    params = _pairs(page.text, "params")
    assert params.keys() == run.data.params.keys()
    mlflow_link = f"http://mlflow.example:5000/#/experiments/{run.info.experiment_id}/runs/"
    assert f'href="{mlflow_link}{cell.run_id}"' in page.text
    image = client.get(f"/runs/{cell.run_id}/artifacts/evaluation.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert f'src="/runs/{cell.run_id}/artifacts/evaluation.png"' in page.text
    listing = client.get(f"/runs/{cell.run_id}/artifacts/cv_results.csv")
    assert listing.status_code == 200
    assert listing.text.startswith("candidate,params,mean_test_roc_auc")
    assert 'href="/runs/' + cell.run_id + '/artifacts/cv_results.csv"' in page.text


def test_unknown_run_is_a_404_page(client):
    page = client.get("/runs/0123456789abcdef")
    assert page.status_code == 404
    assert "<h1>404 · Not found</h1>" in page.text and "0123456789abcdef" in page.text
    assert client.get("/no/such/page").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "..%2F..%2F..%2Fmlfactory.db",
        "%2E%2E/%2E%2E/%2E%2E/mlfactory.db",
        "%2Fetc%2Fpasswd",
        "",
        "missing.txt",
    ],
)
def test_artifacts_cannot_leave_the_run_folder(client, factory, path):
    assert (factory.settings.home / "mlfactory.db").is_file()
    response = client.get(f"/runs/{factory.result.run_id}/artifacts/{path}")
    assert response.status_code == 404
    assert b"SQLite format" not in response.content and b"root:" not in response.content


def test_resolve_artifact_rejects_traversal_and_symlinks_out(tmp_path):
    run_dir = tmp_path / "exp" / "run" / "artifacts"
    run_dir.mkdir(parents=True)
    (run_dir / "ok.txt").write_text("fine")
    (tmp_path / "secret.txt").write_text("secret")
    (run_dir / "link.txt").symlink_to(tmp_path / "secret.txt")
    uri = run_dir.as_uri()
    assert resolve_artifact(uri, "ok.txt").read_text() == "fine"
    for bad in ("../../../secret.txt", str(tmp_path / "secret.txt"), "link.txt", ".", "nope"):
        with pytest.raises(ModelNotFound):
            resolve_artifact(uri, bad)
    with pytest.raises(ModelNotFound, match="not on this machine"):
        resolve_artifact("s3://bucket/run/artifacts", "ok.txt")


def test_models_page_versions_aliases_metrics_and_explain_report(client, factory):
    page = client.get("/models").text
    assert '<span class="pill champion">@champion</span>' in page
    assert '<span class="pill challenger">@challenger</span>' in page
    links = re.findall(r'class="explain-link" href="([^"]+)"', page)
    linear = next(cell for cell in factory.result.cells if "LogisticRegression" in cell.name)
    assert links == [f"/runs/{linear.run_id}/artifacts/explain/report.html"]
    assert f"{linear.test_scores['roc_auc']:.4f}" in page
    report = client.get(links[0])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "data:image/png;base64," in report.text
    assert report.headers["content-security-policy"].startswith("sandbox")


def test_monitoring_page_charts_the_planted_drift(client, factory):
    page = client.get("/monitoring").text
    section = re.search(
        r'<section class="model-drift" data-model="cancer">(.*?)</section>', page, re.S
    )
    html = section.group(1)
    assert html.count('class="point"') == 4
    shares = [float(s) for s in re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d: ([\d.]+)</title>", html)]
    assert shares == [0.0, 0.25, 0.5, 1.0]  # 0, 1, 2, 4 of the 4 columns shifted by 3 sd
    assert 'class="threshold"' in html  # the 0.25 verdict threshold
    assert "4 of 4 features drifted" in html  # the latest report, inline
    latest = _cells_by_class(html, "drift-features")
    assert sorted(r[0] for r in latest) == list(DRIFT_COLUMNS)
    assert all(r[2] == "drift" for r in latest)


def _cells_by_class(html: str, css: str) -> list[list[str]]:
    body = re.search(rf'<table class="{css}">(.*?)</table>', html, re.S).group(1)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        if "<td" in r
    ]


def test_report_page_and_unknown_report(client):
    first = client.get("/monitoring/reports/1")
    assert first.status_code == 200 and "no drift" in first.text
    rows = _cells_by_class(first.text, "drift-features")
    assert {r[2] for r in rows} == {"ok"}
    assert client.get("/monitoring/reports/999").status_code == 404


def test_drift_table_with_extra_and_legacy_columns_is_read(isolated_home):
    settings = load_settings()
    engine = get_engine(settings.database_url)
    save_planted_drift_reports(settings, model="m")
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE drift_reports ADD COLUMN html_path TEXT")
    with _client(settings) as client:
        page = client.get("/monitoring").text
    assert 'data-model="m"' in page and page.count('class="point"') == 4


def test_api_key_guards_every_page_but_health(isolated_home, monkeypatch):
    monkeypatch.setenv("MLFACTORY_API_KEY", "s3cret")
    settings = load_settings()
    with _client(settings) as client:
        assert client.get("/health").status_code == 200
        refused = client.get("/data")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith(
            "Basic"
        )
        assert client.get("/data", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/data", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        basic = base64.b64encode(b"anyone:s3cret").decode()
        assert client.get("/models", headers={"Authorization": f"Basic {basic}"}).status_code == 200
        bad = base64.b64encode(b"anyone:nope").decode()
        assert client.get("/models", headers={"Authorization": f"Basic {bad}"}).status_code == 401


def test_pages_forbid_external_resources(client):
    for path in ("/data", "/experiments", "/models", "/monitoring"):
        response = client.get(path)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert not re.search(
            r'(src|href)="(https?:)?//',
            response.text.replace('href="http://mlflow.example:5000/', ""),
        )


@pytest.mark.postgres
def test_monitoring_and_models_pages_on_postgresql(isolated_home, postgres_url):
    settings = load_settings(db_url=postgres_url)
    with _client(settings) as client:
        assert "No drift reports yet" in client.get("/monitoring").text
        save_planted_drift_reports(settings, model="pg")
        page = client.get("/monitoring").text
        assert "No registered models yet" in client.get("/models").text
    shares = [float(s) for s in re.findall(r"\d\d:\d\d: ([\d.]+)</title>", page)]
    assert shares == [0.0, 0.25, 0.5, 1.0]
    assert "4 of 4 features drifted" in page
