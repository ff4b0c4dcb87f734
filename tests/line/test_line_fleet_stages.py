"""A fleet line's explain, batch and monitor stages: run with the fleet functions (importance of
every segment, partial dependence and SHAP of the named ones; batch scoring by segment; a drift
baseline per segment published as a report), then up to date by their keys; ``--if-drift``
judges the fleet's traffic segment by segment."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.monitoring import read_drift_reports
from mlfactory.serving import BackgroundServer
from mlfactory.serving._app import create_app
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
param_grid = { clf__C = [1.0] }

[train.experiment.segments]
by = ["region"]
min_rows = 100
fallback = "global"

[gate]
resamples = 200
floors = { roc_auc = 0.6 }

[promote]
model = "regions"
onnx = false

[explain]
max_rows = 60
n_repeats = 1
top_k = 2
segments = ["s01"]

[batch]
input = "new.parquet"
output = "scored"
key_columns = ["region"]

[monitor]
"""


def _statuses(output: str) -> dict[str, str]:
    return dict(re.findall(r"│ (\w+)\s+│ (ran|up to date|would run)\s", output))


@pytest.mark.slow
def test_a_fleet_line_explains_scores_and_monitors_by_segment(tmp_path: Path) -> None:
    fleet_frame(segments=3, rows=200).to_csv(tmp_path / "regions.csv", index=False)
    new = fleet_frame(segments=3, rows=20, tiny=5, seed=5)
    new.drop(columns=["y"]).assign(
        region=lambda f: f["region"].where(f.index % 9 > 0, "zz")
    ).to_parquet(tmp_path / "new.parquet")
    line = tmp_path / "line.toml"
    line.write_text(LINE)
    runner = CliRunner()

    first = runner.invoke(app, ["run", str(line)], env={"COLUMNS": "300"})
    assert first.exit_code == 0, first.output
    statuses = _statuses(first.output)
    assert statuses["explain"] == statuses["batch"] == statuses["monitor"] == "ran", first.output
    flat = " ".join(first.output.split())
    assert "4 segment model(s) explained; most often first: x1" in flat, flat

    reports = get_settings().reports_dir / "line" / "regions" / "explain"
    table = pd.read_csv(reports / "segment_importance.csv")
    assert set(table["segment"]) == {"s00", "s01", "s02", "__fallback__"}
    detail = reports / "detail" / "segments" / "s01"
    pdp = pd.read_csv(detail / "pdp_one_way.csv")
    curve = pdp[pdp["feature"] == "x1"].sort_values("value")["average"].to_numpy()
    assert curve[-1] < curve[0]  # s01's planted sign is negative
    assert (detail / "shap_values.csv").is_file()

    scored = pd.read_parquet(tmp_path / "scored")
    assert len(scored) == len(new) and set(scored["region"]) >= {"zz", "tiny0", "s02"}
    assert np.isfinite(scored["proba_1"]).all()

    (baseline,) = read_drift_reports(get_engine(get_settings().database_url), "regions").to_dict(
        "records"
    )
    assert baseline["current"] == "held-out rows of fleet regions v1"
    assert {f["column"] for f in baseline["report"]["features"]} >= {"s00", "s01", "s02"}
    assert "baseline of v1" in flat and "segment(s) judged" in flat

    again = runner.invoke(app, ["run", str(line)], env={"COLUMNS": "300"})
    assert again.exit_code == 0, again.output
    assert set(_statuses(again.output).values()) == {"up to date"}, again.output

    # --if-drift on a fleet: segment s01's traffic moved, so the line runs again
    traffic = fleet_frame(segments=3, rows=60, tiny=2, seed=21)
    traffic = traffic[traffic["region"].isin(["s00", "s01"])].copy()
    traffic.loc[traffic["region"] == "s01", "x2"] += 3.0
    body = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in traffic[["region", "x1", "x2", "x3"]].to_dict("records")
    ]
    application = create_app(get_settings(), "regions", log_flush_interval_s=0.05)
    with BackgroundServer(application) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/predict", json=body, timeout=60).status_code == 200
    drift = runner.invoke(
        app, ["run", str(line), "--if-drift", "--cooldown", "0m"], env={"COLUMNS": "300"}
    )
    assert drift.exit_code == 0, drift.output
    assert "(segments s01; drift report" in " ".join(drift.output.split()), drift.output
    assert _statuses(drift.output)["train"] == "ran"


def test_explain_segments_on_a_single_model_line_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    fleet_frame(segments=2, rows=100).to_csv(tmp_path / "regions.csv", index=False)
    single = LINE.replace("[train.experiment.segments]", "[unused]").split("[unused]")[0]
    rest = LINE.split("[gate]", 1)[1]
    line = tmp_path / "line.toml"
    line.write_text(f"{single}\n[gate]{rest}")
    result = CliRunner().invoke(app, ["run", str(line)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "field 'explain.segments': the experiment trains one model, not a fleet" in flat
    assert "ran" not in _statuses(result.output).values()
