"""Dashboard links and artifact paths a hostile name cannot break, on a real uvicorn server."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from mlfactory.dashboard import create_dashboard_app
from mlfactory.serving import BackgroundServer
from mlfactory.settings import load_settings
from mlfactory.tracking import open_tracking

NAMES = ["team/credit", "/leading/slash", "q?x=1#frag", "100% sure", "ünïcödé 名前", "two  spaces"]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """Experiments with hostile names, one run each with a text artifact; a live dashboard."""
    settings = load_settings(home=tmp_path_factory.mktemp("names") / ".mlfactory")
    client = open_tracking(settings)
    runs = {}
    for name in NAMES:
        run = client.create_run(client.create_experiment(name))
        client.log_metric(run.info.run_id, "test_roc_auc", 0.75)
        client.log_text(run.info.run_id, "hello", "notes/a.txt")
        client.set_terminated(run.info.run_id)
        runs[name] = run.info.run_id
    with (
        BackgroundServer(create_dashboard_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http, runs


def test_every_experiment_link_leads_to_its_leaderboard(dashboard):
    http, runs = dashboard
    listing = http.get("/experiments")
    assert listing.status_code == 200
    links = {
        html.unescape(text): html.unescape(href)
        for href, text in re.findall(r'<a href="(/experiments/[^"]*)">([^<]*)</a>', listing.text)
    }
    assert set(NAMES) <= set(links)
    for name in NAMES:
        page = http.get(links[name])
        assert page.status_code == 200, (name, links[name], page.text[:300])
        assert runs[name] in page.text  # this experiment's run, not another's
        sorted_page = http.get(links[name], params={"sort": "test_roc_auc", "desc": 0})
        assert sorted_page.status_code == 200 and runs[name] in sorted_page.text
        run_page = http.get(f"/runs/{runs[name]}")
        back = re.search(r'experiment <a href="([^"]+)"', run_page.text).group(1)
        assert http.get(html.unescape(back)).status_code == 200


HOSTILE_PATHS = [
    "notes/a%00.txt",
    "%00",
    "notes%00/a.txt",
    "..%00/..%00/mlflow.db",
    "notes/" + "a" * 5000,
    # traversal stays a 404
    "..%2F..%2F..%2Fmlflow.db",
    "%2E%2E/%2E%2E/%2E%2E/%2E%2E/mlflow.db",
    "notes/a.txt/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
]


def test_nul_bytes_long_names_and_traversal_in_artifact_paths_are_404(dashboard):
    http, runs = dashboard
    run_id = runs[NAMES[0]]
    assert http.get(f"/runs/{run_id}/artifacts/notes/a.txt").text == "hello"
    for path in HOSTILE_PATHS:
        response = http.get(f"/runs/{run_id}/artifacts/{path}")
        assert response.status_code == 404, (path[:60], response.text[:300])
        assert "Not found" in response.text and "root:" not in response.text
