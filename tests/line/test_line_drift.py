"""``mlfactory run LINE --if-drift``: the champion's logged traffic decides if the line runs."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import load_credit, write_synthetic
from mlfactory.db import get_engine
from mlfactory.demo import shifted_sample
from mlfactory.line import read_decisions, stage_history
from mlfactory.prediction_log import (
    LoggedRequest,
    create_prediction_log,
    insert_prediction_requests,
)
from mlfactory.registry import load_model
from mlfactory.settings import get_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "credit_line.toml"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})


def ran(output: str) -> set[str]:
    return {m[1] for m in re.finditer(r"│ (\w+)\s+│ ran\s", output)}


def log_traffic(frame, version_ref: str = "credit@champion", batch: int = 100) -> None:
    """Score ``frame`` with the champion and log it as the service does (real writer)."""
    settings = get_settings()
    loaded = load_model(settings, version_ref)
    X = frame[loaded.feature_names]
    predictions = loaded.model.predict(X)
    probabilities = loaded.model.predict_proba(X)
    engine = get_engine(settings.database_url)
    create_prediction_log(engine)
    requests = []
    for start in range(0, len(X), batch):
        chunk = X.iloc[start : start + batch]
        columns = {c: json.loads(chunk[c].to_json(orient="values")) for c in chunk.columns}
        rows = slice(start, start + len(chunk))
        requests.append(
            LoggedRequest(
                uuid.uuid4().hex,
                "credit",
                loaded.info.version,
                datetime.now(UTC),
                columns,
                [int(p) for p in predictions[rows]],
                {
                    str(c): [float(p) for p in probabilities[rows, i]]
                    for i, c in enumerate(loaded.classes)
                },
                1.0,
            )
        )
    with engine.begin() as connection:
        insert_prediction_requests(connection, requests)


@pytest.fixture
def line(tmp_path: Path) -> Path:
    path = tmp_path / "line.toml"
    text = EXAMPLE.read_text()
    for section in ("data", "explain", "monitor"):
        text = re.sub(rf"^\[{section}\][^\n]*\n(?:(?!\[)[^\n]*\n?)*", "", text, flags=re.M)
    path.write_text(text.replace("resamples = 1000", "resamples = 200"))
    write_synthetic("credit", 3_000, seed=9, settings=get_settings())
    return path


def test_if_drift_runs_the_line_only_on_drift_and_after_the_cooldown(line):
    first = invoke("run", str(line), "--if-drift")  # no champion yet: the line makes one
    assert first.exit_code == 0, first.output
    assert "no champion credit@champion yet" in first.output
    assert ran(first.output) == {"dataset", "train", "gate", "promote"}

    quiet = invoke("run", str(line), "--if-drift", "--cooldown", "0m")
    assert quiet.exit_code == 0 and "no drift check possible" in quiet.output, quiet.output
    assert ran(quiet.output) == set()

    X = load_credit(settings=get_settings()).X
    log_traffic(X.sample(600, random_state=0))
    calm = invoke("run", str(line), "--if-drift", "--cooldown", "0m")
    assert calm.exit_code == 0 and "no drift in the champion's last 24h" in calm.output, calm.output
    assert ran(calm.output) == set()

    log_traffic(shifted_sample(X.sample(1_500, random_state=1)))
    waiting = invoke("run", str(line), "--if-drift")  # drifted, but retrained minutes ago
    assert waiting.exit_code == 0 and "cooldown: the line last retrained" in waiting.output
    assert ran(waiting.output) == set()

    retrain = invoke("run", str(line), "--if-drift", "--cooldown", "0m")
    assert retrain.exit_code == 0, retrain.output
    assert (
        "drift in the champion's last 24h" in retrain.output
        and "the gate decides" in retrain.output
    )
    assert ran(retrain.output) == {"dataset", "train", "gate", "promote"}
    decision = read_decisions(get_engine(get_settings().database_url), "credit")[0]
    assert not decision["passed"] and "ties champion v1" in decision["reason"]  # same data
    records = stage_history(get_engine(get_settings().database_url), "credit")
    assert [r.stage for r in records].count("train") == 2
