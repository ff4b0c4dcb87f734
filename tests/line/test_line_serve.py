"""A running server picks up the champion a line run promotes, with no failed request."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx
import pytest

from mlfactory.datasets import load_dataset, write_synthetic
from mlfactory.db import get_engine
from mlfactory.line import read_decisions
from mlfactory.serving import BackgroundServer, create_app
from mlfactory.settings import get_settings

LINE = """
name = "serve-test"

[dataset]
name = "credit"

[train.experiment]
preprocessing = "power"
model = "KNN"
seed = 0
test_size = 0.3

[train.experiment.cv]
folds = 2
scoring = ["roc_auc"]

[train.experiment.search]
kind = "grid"
param_grid = { KNN = { clf__n_neighbors = [1] }, LogisticRegression = { clf__C = [1.0] } }

[gate]
primary = "roc_auc"
resamples = 200

[promote]
model = "credit"
onnx = false
"""


def run_line(line: Path, *args: str) -> None:
    """``mlfactory run`` as its own process, the way cron or an operator starts it."""
    command = [sys.executable, "-m", "mlfactory", "run", str(line), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_server_switches_to_the_promoted_champion_without_a_failed_request(tmp_path: Path):
    settings = get_settings()
    write_synthetic("credit", 3_000, seed=11, settings=settings)
    line = tmp_path / "line.toml"
    line.write_text(LINE)
    run_line(line)  # the first champion: a 1-nearest-neighbour model, v1
    X = load_dataset("credit", settings=settings).X.head(5)
    body = X.astype(object).where(X.notna(), None).to_dict(orient="records")

    app = create_app(settings, "credit", reload_interval_s=0.2, log_predictions=False)
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def traffic(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                response = http.post("/predict", json=body)
                version = response.json().get("model_version") if response.is_success else None
                seen.append((response.status_code, version))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # uvicorn's websockets import
        server = BackgroundServer(app).__enter__()
    sender = threading.Thread(target=traffic, args=(server.url,), daemon=True)
    try:
        sender.start()
        run_line(line, "--set", "train.experiment.model=LogisticRegression")
        decision = read_decisions(get_engine(settings.database_url), "credit")[0]
        assert decision["passed"] and decision["version"] == "2", decision["reason"]
        deadline = time.monotonic() + 60
        while not any(v == "2" for _, v in seen[-5:]) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a few more requests on the new champion
    finally:
        stop.set()
        sender.join(30)
        server.__exit__()
    versions = [v for _, v in seen]
    assert len(seen) > 20  # traffic ran all along the line run
    assert {status for status, _ in seen} == {200}, seen[-10:]
    assert versions[0] == "1" and versions[-1] == "2"
    switch = versions.index("2")
    assert set(versions[:switch]) == {"1"} and set(versions[switch:]) == {"2"}  # one switch
