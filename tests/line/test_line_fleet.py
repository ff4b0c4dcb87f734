"""A fleet in the factory line: [segments] in the line's experiment trains one model per segment;
the gate is per segment (a worse segment keeps its model); a rerun is up to date."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.line import read_decisions
from mlfactory.settings import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
from _fleet_data import fleet_frame

LINE = """
name = "regions"

[dataset]
path = "regions.csv"
target = "y"

[train.experiment]
model = "LogisticRegression"
seed = 0

[train.experiment.cv]
folds = 2
scoring = ["roc_auc", "accuracy"]

[train.experiment.search]
kind = "grid"
param_grid = {{ clf__C = [1.0] }}

[train.experiment.segments]
by = ["region"]
min_rows = 100
fallback = "global"

[gate]
resamples = 200
floors = {{ roc_auc = 0.6 }}

[promote]
model = "regions"
onnx = false
{extra}
"""


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def _statuses(output: str) -> dict[str, str]:
    return dict(re.findall(r"│ (\w+)\s+│ (ran|up to date|would run)\s", output))


def test_a_fleet_line_trains_gates_per_segment_and_is_then_up_to_date(tmp_path: Path):
    fleet_frame(segments=4, rows=240).to_csv(tmp_path / "regions.csv", index=False)
    line = tmp_path / "line.toml"
    line.write_text(LINE.format(extra=""))

    first = _invoke("run", str(line))
    assert first.exit_code == 0, first.output
    assert set(_statuses(first.output).values()) == {"ran"}, first.output
    flat = " ".join(first.output.split())
    assert "fleet of 6 segments, 4 trained" in flat and "regions v1 is now @champion" in flat, flat
    engine = get_engine(get_settings().database_url)
    (decision,) = read_decisions(engine, "regions")
    assert decision["passed"] and decision["line"] == "regions"

    again = _invoke("run", str(line))
    assert set(_statuses(again.output).values()) == {"up to date"}, again.output

    # region s01's x1 is shuffled (same labels, same split): its signal is gone, so its new model
    # cannot pass and it keeps its champion model; the other segments' rows are unchanged
    fleet_frame(segments=4, rows=240, shuffled=("s01",)).to_csv(
        tmp_path / "regions.csv", index=False
    )
    changed = _invoke("run", str(line))
    assert changed.exit_code == 0, changed.output
    assert _statuses(changed.output)["train"] == "ran"
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT segment, status FROM segment_results ORDER BY id")
        ).all()
    latest = {segment: status for segment, status in rows}
    assert latest["s00"] == "reused" and latest["s01"] != "reused", latest
    newest = read_decisions(engine, "regions")[0]
    assert newest["line"] == "regions" and newest["champion_version"] == "1"
    by_segment = {r["metric"]: r for r in newest["rules"] if r["rule"] == "segment"}
    assert not by_segment["s01"]["passed"] and "rejected: roc_auc" in by_segment["s01"]["reason"]
    assert "kept by reference" in by_segment["s00"]["reason"]  # unchanged: not re-judged
