"""The dashboard in a real headless Chromium against a real uvicorn server on loopback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _dashboard_factory import Factory
from _tools import require_tool

from mlfactory.dashboard import create_dashboard_app
from mlfactory.serving import BackgroundServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True, scope="module")
def _chromium_installed() -> None:
    """Skipped with the reason on a machine without Chromium; a failure under CI=true."""
    require_tool(f"Chromium ({CHROMIUM})", CHROMIUM.exists(), "apt-get install chromium")


@pytest.fixture(scope="module")
def browser_page(factory: Factory):
    """A Chromium page on the served dashboard, recording console errors and failed requests."""
    from playwright.sync_api import sync_playwright  # pip package "playwright"; no browser download

    app = create_dashboard_app(factory.settings)
    problems: list[str] = []
    with BackgroundServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on(
            "console",
            lambda m: (
                problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.on(
            "response",
            lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        try:
            yield page, server.url, problems
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("path", "heading", "table"),
    [
        ("/data", "Data", "#tickers"),
        ("/experiments", "Experiments", "#experiments"),
        ("/experiments/cancer", "Experiment cancer", "#leaderboard"),
        ("/models", "Models", "table.versions"),
        ("/monitoring", "Monitoring", "table.drift-history"),
    ],
)
def test_each_page_loads_cleanly_with_its_table(browser_page, factory, path, heading, table):
    page, url, problems = browser_page
    problems.clear()
    response = page.goto(url + path)
    assert response.status == 200
    assert page.locator("h1").inner_text() == heading
    rows = page.locator(f"{table} tbody tr")
    expected = {"/data": 3, "/experiments": 1, "/experiments/cancer": 3, "/models": 2}
    assert rows.count() == expected.get(path, 4)
    if path == "/data":
        assert rows.locator("td:first-child").all_inner_texts() == factory.tickers
    if path == "/monitoring":
        assert page.locator("svg.chart circle.point").count() == 4
    assert problems == []


def test_clicking_a_run_opens_its_detail_with_the_evaluation_image(browser_page, factory):
    page, url, problems = browser_page
    problems.clear()
    page.goto(url + "/experiments/cancer?sort=test_roc_auc&desc=1")
    page.locator("th a[data-column='test_accuracy']").click()
    page.wait_for_url(re.compile(r"sort=test_accuracy&desc=1"))
    first = page.locator("#leaderboard tbody tr").first
    run_id = first.get_attribute("data-run-id")
    first.locator("a.run-link").click()
    page.wait_for_url(f"{url}/runs/{run_id}")
    assert page.locator("h1").inner_text().startswith("Run ")
    assert page.locator("#metrics").inner_text().count("test_roc_auc") == 1
    image_width = page.locator("#evaluation").evaluate("img => img.naturalWidth")
    assert image_width > 100  # the PNG was served from the artifact store and decoded
    assert problems == []


def test_unknown_run_shows_the_404_page(browser_page):
    page, url, _ = browser_page
    response = page.goto(url + "/runs/does-not-exist")
    assert response.status == 404
    assert "not found" in page.locator("#error-message").inner_text()
