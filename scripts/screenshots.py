"""Screenshots of every dashboard page into docs/screenshots/ (headless Debian Chromium).

Builds a small populated factory in a temporary home (synthetic prices, a 2-cell matrix on
breast cancer, two model versions with an explain report, planted drift reports), serves the
dashboard on a free loopback port and saves one PNG per page.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Needs ``pip install playwright`` and ``apt-get install chromium`` (no ``playwright install``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests" / "dashboard"))
    from _dashboard_factory import build_factory  # the same populated factory the tests use
    from playwright.sync_api import sync_playwright

    from mlfactory.dashboard import create_dashboard_app
    from mlfactory.serving import BackgroundServer

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        factory = build_factory(Path(folder))
        run_id = next(c.run_id for c in factory.result.cells if "LogisticRegression" in c.name)
        pages = {
            "data": "/data",
            "experiments": "/experiments/cancer",
            "run": f"/runs/{run_id}",
            "models": "/models",
            "monitoring": "/monitoring",
        }
        app = create_dashboard_app(factory.settings)
        with BackgroundServer(app) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            for name, path in pages.items():
                page.goto(server.url + path)
                target = args.out / f"{name}.png"
                page.screenshot(path=str(target), full_page=name != "run")
                print(f"{target} ({target.stat().st_size // 1024} KiB)")
            browser.close()


if __name__ == "__main__":
    main()
