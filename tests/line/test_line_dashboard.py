"""The dashboard's model page shows the gate's promotion decisions, read without writing."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from _readonly_checks import browse_dashboard, store_fingerprint
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import write_synthetic
from mlfactory.db import get_engine
from mlfactory.line import read_decisions
from mlfactory.settings import get_settings, load_settings

LINE = """
name = "dashboard-test"

[dataset]
name = "credit"

[train.experiment]
preprocessing = "power"
model = "LogisticRegression"
seed = 0
test_size = 0.3

[train.experiment.cv]
folds = 2
scoring = ["roc_auc"]

[gate]
primary = "roc_auc"
resamples = 200

[promote]
model = "credit"
onnx = false
"""
NASTY = '<script>alert("x")</script>'


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})


@pytest.mark.slow
def test_model_page_shows_decisions_escaped_and_writes_nothing(tmp_path: Path):
    write_synthetic("credit", 2_000, seed=3, settings=get_settings())
    line = tmp_path / "line.toml"
    line.write_text(LINE)
    settings = load_settings()

    # before any line ran there is no decision: the page says so, and the store is untouched
    assert invoke("run", str(line), "--set", "gate.floors.roc_auc=0.999").exit_code == 0
    before = store_fingerprint(settings)
    body = browse_dashboard(settings)["/models"][1]
    assert store_fingerprint(settings) == before
    assert "REJECT" in body and "is below the floor 0.9990" in html.unescape(body)

    # a forced promotion whose reason is markup: shown as text, never as a tag
    result = invoke("run", str(line), "--force-promote", "--reason", NASTY)
    assert result.exit_code == 0, result.output
    decisions = read_decisions(get_engine(settings.database_url), "credit")
    assert [d["passed"] for d in decisions] == [True, False]
    before = store_fingerprint(settings)
    status, body = browse_dashboard(settings)["/models"]
    assert store_fingerprint(settings) == before  # the dashboard never writes
    assert status == 200
    assert body.count('<tr class="decision ') == 2
    assert body.index("PASS (forced:") < body.index("REJECT")  # newest first
    assert "<script" not in body and "forced: &lt;script&gt;alert(" in body
    assert decisions[0]["heldout_sha256"][:12] in body


def test_model_page_without_models_shows_no_decisions():
    write_synthetic("credit", 1_000, seed=3, settings=get_settings())
    body = browse_dashboard(load_settings())["/models"][1]
    assert "No registered models yet" in body and "decision" not in body.lower()
