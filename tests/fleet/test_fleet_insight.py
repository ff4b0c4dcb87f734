"""A fleet's drift report published (HTML, JSON, a drift_reports row), per-segment partial
dependence and SHAP, and batch scoring on a Dask cluster, identical to the local path."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from _fleet_data import fleet_frame, sign, write_fleet
from distributed import LocalCluster
from typer.testing import CliRunner

from mlfactory.batch import batch_predict
from mlfactory.cli import app
from mlfactory.dashboard import create_dashboard_app
from mlfactory.db import get_engine
from mlfactory.fleet._registry import promote_fleet
from mlfactory.monitoring import read_drift_reports
from mlfactory.serving import BackgroundServer
from mlfactory.serving._app import create_app
from mlfactory.settings import Settings, get_settings, load_settings
from mlfactory.tracking import open_tracking
from mlfactory.training import train

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # starlette prefers httpx2; httpx still works
    from fastapi.testclient import TestClient

runner = CliRunner()
FEATURES = ["region", "x1", "x2", "x3"]


@dataclass
class Fleet:
    settings: Settings
    home: Path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    folder = tmp_path_factory.mktemp("fleet-insight")
    settings = load_settings(home=folder / ".mlfactory")
    spec = write_fleet(folder / "data", segments=4, rows=150, tiny=20)
    result = train(spec, settings, n_jobs=1)
    promote_fleet(settings, "regions", run_id=result.run_id)
    return Fleet(settings, folder / ".mlfactory")


@pytest.fixture
def home(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's settings are the fleet's home."""
    monkeypatch.setenv("MLFACTORY_HOME", str(fleet.home))
    get_settings.cache_clear()
    return get_settings()


def _invoke(*args: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_monitor_model_publishes_the_fleet_report_with_a_row_per_segment(
    fleet: Fleet, home: Settings, tmp_path: Path
) -> None:
    frame = fleet_frame(segments=4, rows=80, tiny=2, seed=21)
    calm = frame[frame["region"] == "s00"]
    moved = frame[frame["region"] == "s01"].assign(x2=lambda f: f["x2"] + 3.0)
    application = create_app(fleet.settings, "regions", log_flush_interval_s=0.05)
    with BackgroundServer(application) as server, httpx.Client(base_url=server.url) as client:
        for part in (calm, moved):
            body = [
                {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                for r in part[FEATURES].to_dict("records")
            ]
            assert client.post("/predict", json=body, timeout=60).status_code == 200

    out = tmp_path / "report"
    result = _invoke("monitor", "model", "regions", "--since", "1h", "--out", str(out))
    assert result.exit_code == 1, result.output  # drift found
    flat = " ".join(result.output.split())
    assert "worst x2: ks" in flat and f"{out / 'drift.html'}" in flat, flat

    document = json.loads((out / "drift.json").read_text())
    assert document["drifted"] and document["model"] == "regions"
    assert document["fleet"]["segments_drifted"] == ["s01"]
    assert document["fleet"]["drifted_segment_columns"]["s01"][0]["column"] == "x2"
    rows = {f["column"]: f for f in document["features"]}
    assert rows["s01"]["status"] == "drift" and rows["s01"]["details"]["worst_feature"] == "x2"
    assert rows["s00"]["status"] == "ok" and rows["tiny0"]["status"] == "not testable"
    assert rows["s01"]["n_current"] == len(moved) and rows["s01"]["test"] == "ks"
    page = (out / "drift.html").read_text()
    assert "Fleet drift report regions v1" in page and "drift in 1 of 2 segment(s)" in page
    assert "<h2>Segment s01" in page and "<svg" in page  # the drifted segment's figures

    (stored,) = read_drift_reports(get_engine(home.database_url), "regions").to_dict("records")
    assert stored["drifted"] and stored["n_drifted"] == 1 and stored["n_features"] == len(rows)
    assert stored["share_drifted"] == pytest.approx(0.5)  # 1 of the 2 judged segments
    assert f"report {stored['id']}:" in flat

    with TestClient(create_dashboard_app(home)) as dashboard:
        shown = dashboard.get(f"/monitoring/reports/{stored['id']}")
    assert shown.status_code == 200  # the dashboard's drift page shows a row per segment
    assert "drift in 1 of 2 segment(s) judged: s01" in shown.text and "tiny0" in shown.text


def test_explain_segments_gives_each_its_partial_dependence_and_shap(
    home: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "explained"
    result = _invoke(
        "explain", "regions", "--segment", "s00", "--segment", "s01", "--n-repeats", "2",
        "--max-rows", "60", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "segment_importance.csv")
    assert set(table["segment"]) == {"s00", "s01"}  # only the chosen segments
    for key in ("s00", "s01"):
        folder = out / "segments" / key
        top = table[(table["segment"] == key) & (table["rank"] == 1)]["feature"].item()
        assert top == "x1", key  # the planted signal ranks first in its segment
        shap = pd.read_csv(folder / "shap_values.csv", index_col=0)
        assert shap.abs().mean().idxmax().endswith("x1"), key
        pdp = pd.read_csv(folder / "pdp_one_way.csv")
        curve = pdp[pdp["feature"] == "x1"].sort_values("value")["average"].to_numpy()
        # the segment's own sign: up in s00, down in s01 (a global model sees neither)
        assert np.sign(curve[-1] - curve[0]) == sign(key), (key, curve)
        assert (folder / "report.html").is_file() and (folder / "pdp.png").is_file()
    page = (out / "report.html").read_text()
    assert page.count("<h2>Segment s0") == 2 and "data:image/png;base64" in page
    assert "Partial dependence (one-way)" in page and "Mean |SHAP|" in page
    assert "top |SHAP|" in result.output
    run_id = re.search(r"logged on run (\w+) under explain/", result.output).group(1)
    logged = {a.path for a in open_tracking(home).list_artifacts(run_id, "explain")}
    assert {"explain/report.html", "explain/segment_importance.csv", "explain/segments"} <= logged


def test_explain_of_an_unknown_segment_is_one_line_naming_it(home: Settings) -> None:
    result = _invoke("explain", "regions", "--segment", "nowhere")
    assert result.exit_code != 0
    assert "--segment 'nowhere': no such segment in the fleet; it has: s00, s01" in " ".join(
        result.output.split()
    )
    small = _invoke("explain", "regions", "--segment", "tiny0")
    assert "a small segment has no model of its own" in " ".join(small.output.split())


def test_batch_on_a_dask_cluster_writes_the_local_files(fleet: Fleet, tmp_path: Path) -> None:
    frame = fleet_frame(segments=4, rows=60, tiny=10, seed=11)
    unseen = fleet_frame(segments=2, rows=15, tiny=0, seed=12).assign(region="zz")
    frame = pd.concat([frame, unseen], ignore_index=True).sample(frac=1.0, random_state=3)
    frame.drop(columns=["y"]).to_parquet(tmp_path / "input.parquet", row_group_size=50)
    common = dict(input_path=tmp_path / "input.parquet", key_columns=["region"], partition_rows=50)
    local = batch_predict(fleet.settings, "regions", output_path=tmp_path / "local", **common)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        remote = batch_predict(
            fleet.settings, "regions", output_path=tmp_path / "cluster",
            scheduler=cluster.scheduler_address, **common,
        )  # fmt: skip
    assert remote.partitions == local.partitions == 6 and remote.rows == len(frame)
    names = sorted(p.name for p in (tmp_path / "local").glob("*.parquet"))
    assert names == sorted(p.name for p in (tmp_path / "cluster").glob("*.parquet"))
    for name in names:
        mine = pd.read_parquet(tmp_path / "cluster" / name)
        theirs = pd.read_parquet(tmp_path / "local" / name)
        assert mine["scored_at"].nunique() == 1  # one timestamp per run
        pd.testing.assert_frame_equal(
            mine.drop(columns="scored_at"), theirs.drop(columns="scored_at"), check_exact=True
        )
    assert set(pd.read_parquet(tmp_path / "cluster")["region"]) >= {"zz", "tiny0", "s03"}
