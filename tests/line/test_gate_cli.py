"""The promotion gate through the real CLI, on synthetic credit data with a planted signal.

The labels come from a known logistic model of the features, so a logistic regression is
clearly better than a 1-nearest-neighbour model: the gate must accept the one over the other,
reject the reverse, and reject a retrain of the same model (a tie).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import write_synthetic
from mlfactory.db import get_engine
from mlfactory.line import read_decisions
from mlfactory.line._gate import _schema_rule
from mlfactory.registry import InputColumn, describe_model
from mlfactory.settings import get_settings

LINE = """
name = "gate-test"

[dataset]
name = "credit"

[train.experiment]
preprocessing = "power"
model = "KNN"
seed = 0
test_size = 0.3

[train.experiment.cv]
folds = 2
scoring = ["roc_auc", "accuracy"]

[train.experiment.search]
kind = "grid"
param_grid = { KNN = { clf__n_neighbors = [1] }, LogisticRegression = { clf__C = [1.0] } }

[gate]
primary = "roc_auc"
resamples = 500
guards = { accuracy = 0.05 }

[promote]
model = "credit"
onnx = false
"""
LOGREG = "train.experiment.model=LogisticRegression"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})


def aliases() -> dict[str, list[str]]:
    return {v.version: v.aliases for v in describe_model(get_settings(), "credit")}


@pytest.fixture
def gate_line(tmp_path: Path) -> Path:
    write_synthetic("credit", 4_000, seed=11, settings=get_settings())
    path = tmp_path / "line.toml"
    path.write_text(LINE)
    return path


@pytest.mark.slow
def test_gate_floors_better_worse_tie_and_forced(gate_line):
    engine = get_engine(get_settings().database_url)
    line = str(gate_line)

    # no champion: an unreachable floor rejects, and nothing becomes champion
    result = invoke("run", line, "--set", "gate.floors.roc_auc=0.99")
    assert result.exit_code == 0, result.output
    assert aliases() == {"1": ["challenger"]}
    (first,) = read_decisions(engine, "credit")
    assert not first["passed"] and "no champion" in first["reason"]
    assert "is below the floor 0.9900" in first["reason"]

    # default floors (better than chance): the same model passes, without retraining
    result = invoke("run", line)
    assert result.exit_code == 0, result.output
    assert "│ train   │ up to date" in result.output
    assert aliases() == {"1": ["champion"]}

    # a clearly better model: accepted on the paired bootstrap CI
    result = invoke("run", line, "--set", LOGREG)
    assert result.exit_code == 0, result.output
    better = read_decisions(engine, "credit")[0]
    assert better["passed"] and better["champion_version"] == "1" and better["version"] == "2"
    primary = next(r for r in better["rules"] if r["rule"] == "primary")
    assert primary["values"]["ci_low"] > 0.1 and primary["values"]["resamples"] == 500
    assert "roc_auc improves by +0." in better["reason"]
    assert aliases()["2"] == ["champion"] and aliases()["1"] == []

    # a clearly worse one: rejected, alias challenger, the champion does not move
    result = invoke("run", line)
    assert result.exit_code == 0, result.output
    worse = read_decisions(engine, "credit")[0]
    assert not worse["passed"] and worse["version"] == "3" and worse["champion_version"] == "2"
    assert (
        "roc_auc changes by -0." in worse["reason"]
        and "does not clear the margin" in (worse["reason"])
    )
    assert aliases()["3"] == ["challenger"] and aliases()["2"] == ["champion"]
    assert worse["heldout_sha256"] == better["heldout_sha256"]  # the same held-out rows
    version = next(v for v in describe_model(get_settings(), "credit") if v.version == "3")
    assert version.tags["gate.passed"] == "false"
    assert version.tags["gate.reason"] == worse["reason"]
    assert version.tags["gate.heldout_sha256"] == worse["heldout_sha256"]

    # the same model again (a tie): rejected, with the reason in words
    result = invoke("run", line, "--set", LOGREG, "--set", 'train.experiment.description="again"')
    assert result.exit_code == 0, result.output
    tie = read_decisions(engine, "credit")[0]
    assert not tie["passed"] and "ties champion v2" in tie["reason"], tie["reason"]
    assert aliases()["2"] == ["champion"] and aliases()["4"] == ["challenger"]

    # forcing needs a reason, and records it
    same = ("--set", LOGREG, "--set", 'train.experiment.description="again"')
    refused = invoke("run", line, *same, "--force-promote")
    assert refused.exit_code == 2 and "--reason" in refused.output
    result = invoke("run", line, *same, "--force-promote", "--reason", "audit ticket 42")
    assert result.exit_code == 0, result.output
    forced = read_decisions(engine, "credit")[0]
    assert forced["forced"] and forced["passed"] and forced["force_reason"] == "audit ticket 42"
    assert "ties champion v2" in forced["reason"]
    assert aliases()["4"] == ["champion"]
    listed = invoke("models", "decisions", "credit", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert rows[0]["force_reason"] == "audit ticket 42" and len(rows) >= 4

    # a rejected challenger may also be removed; its decision stays
    result = invoke("run", line, "--set", "promote.keep_rejected=false")  # KNN again: worse
    assert result.exit_code == 0, result.output
    removed = read_decisions(engine, "credit")[0]
    assert not removed["passed"] and removed["version"] == "5"
    assert "5" not in aliases() and aliases()["4"] == ["champion"]
    assert "v5 removed (keep_rejected = false" in result.output

    listed = invoke("models", "decisions", "credit")
    assert listed.exit_code == 0, listed.output
    for text in ("REJECT", "PASS", "forced: audit ticket 42", "ties champion v2", "improves by"):
        assert text in listed.output, text
    assert len(read_decisions(engine, "credit")) == 7


def test_models_decisions_without_any():
    result = invoke("models", "decisions", "nothing")
    assert result.exit_code == 0 and "no promotion decisions" in result.output


def test_schema_rule():
    champion = [InputColumn("age", "double", True), InputColumn("income", "double", False)]
    same = _schema_rule(list(champion), champion, allowed=False)
    assert same.passed
    wider = [*champion, InputColumn("debt", "double", True)]
    refused = _schema_rule(wider, champion, allowed=False)
    assert not refused.passed and "debt" in refused.reason
    assert _schema_rule(wider, champion, allowed=True).passed
    retyped = [InputColumn("age", "string", True)]
    assert "age (double -> string)" in _schema_rule(retyped, champion, allowed=False).reason
