"""Serving and batch scoring a fleet: routing by segment on a real server, the LRU cache, the
fallback for small and unseen segments, a tampered file refused, ``predict`` by segment."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from _fleet_data import fleet_frame, write_fleet
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import PREDICTION_REQUESTS, get_engine
from mlfactory.exceptions import DataError
from mlfactory.fleet._registry import load_version_manifest, promote_fleet
from mlfactory.fleet._serve import FleetModel
from mlfactory.registry import ModelRef, resolve_version
from mlfactory.serialization import UnsafeModelError, load_skops
from mlfactory.serving import BackgroundServer
from mlfactory.serving._app import create_app
from mlfactory.settings import Settings, load_settings
from mlfactory.tracking import open_tracking
from mlfactory.training import train

runner = CliRunner()


@dataclass
class Fleet:
    settings: Settings
    home: Path
    manifest: dict
    root: Path  # the training run's artifact folder
    models: dict  # segment key -> fitted pipeline, loaded in process from the bundle
    fallback: object


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    folder = tmp_path_factory.mktemp("fleet-serve")
    settings = load_settings(home=folder / ".mlfactory")
    spec = write_fleet(folder / "data", segments=4, rows=150, tiny=20)
    result = train(spec, settings, n_jobs=1)
    promote_fleet(settings, "regions", run_id=result.run_id)
    info = resolve_version(open_tracking(settings), ModelRef("regions"))
    manifest = load_version_manifest(settings, info, folder / "manifest")
    root = Path(
        open_tracking(settings).get_run(result.run_id).info.artifact_uri.removeprefix("file://")
    )
    root = root / "fleet"

    def load(entry: dict) -> object:
        return load_skops(root / entry["file"], entry["sha256"], recorded_types=entry["types"])

    models = {key: load(entry) for key, entry in manifest["segments"].items()}
    return Fleet(
        settings, folder / ".mlfactory", manifest, root, models, load(manifest["fallback"])
    )


def _records(n: int = 3) -> pd.DataFrame:
    frame = fleet_frame(segments=4, rows=40, tiny=5, seed=7)
    unseen = frame.head(n).assign(region="zz")
    return pd.concat([frame.groupby("region").head(n), unseen], ignore_index=True)


def test_a_real_server_routes_each_record_to_its_segment_model(fleet: Fleet) -> None:
    frame = _records()
    features = ["region", "x1", "x2", "x3"]
    body = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in
            frame[features].to_dict("records")]  # fmt: skip
    application = create_app(fleet.settings, "regions@champion", fleet_cache_size=2)
    with BackgroundServer(application) as server, httpx.Client(base_url=server.url) as client:
        response = client.post("/predict", json=body, timeout=60)
        assert response.status_code == 200, response.text
        invocations = client.post(
            "/invocations",
            json={
                "dataframe_split": {"columns": features, "data": frame[features].values.tolist()}
            },
            timeout=60,
        )
        model = client.get("/model").json()
    assert model["inference"] == "fleet" and "LRU cache of 2" in model["inference_reason"]
    got = np.array([p["probabilities"]["1"] for p in response.json()["predictions"]])
    expected, routes = np.empty(len(frame)), []
    for position, row in enumerate(frame.to_dict("records")):
        key = row["region"]
        own = fleet.models.get(key)
        routes.append(key if own is not None else "fallback")
        scorer = own if own is not None else fleet.fallback
        expected[position] = scorer.predict_proba(
            frame.iloc[[position]][[*features[1:], "region"]]
        )[0, 1]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert response.headers["X-Mlfactory-Segment-Models"] == ",".join(routes)
    assert response.headers["X-Mlfactory-Fallback"] == str(routes.count("fallback"))
    assert routes.count("fallback") == 9  # tiny0, tiny1 (too small for a model) and unseen zz
    labels = [p["prediction"] for p in response.json()["predictions"]]
    assert invocations.json()["predictions"] == labels
    with get_engine(fleet.settings.database_url).connect() as connection:
        logged = connection.execute(sa.select(PREDICTION_REQUESTS.c.inputs)).all()
    logged_routes = [inputs["_model"] for (inputs,) in logged]
    assert routes in logged_routes  # the prediction log says which model scored each record


def test_the_lru_cache_loads_lazily_and_evicts_the_least_recently_used(
    fleet: Fleet, tmp_path: Path
) -> None:
    model = FleetModel(fleet.settings, fleet.manifest, tmp_path, cache_size=2)
    frame = fleet_frame(segments=4, rows=10, tiny=2, seed=3)
    for key in ("s00", "s01", "s00", "s02", "s03"):
        model.predict_proba(frame[frame["region"] == key])
    assert model.cache.keys() == ["s02", "s03"]
    assert (model.cache.misses, model.cache.hits, model.cache.evictions) == (4, 1, 2)
    model.predict(frame[frame["region"] == "s00"])  # evicted: loaded (and verified) again
    assert model.cache.keys() == ["s03", "s00"] and model.cache.misses == 5
    tiny = frame[frame["region"] == "tiny0"]
    model.predict(tiny)
    assert "tiny0" not in model.cache  # no model of its own: the fallback scored it
    np.testing.assert_array_equal(
        model.predict_proba(tiny), fleet.fallback.predict_proba(tiny[["x1", "x2", "x3", "region"]])
    )


def test_serve_verifies_a_fleet_by_its_manifest_and_fallback(fleet: Fleet) -> None:
    from mlfactory.fleet._serve import verify_fleet

    assert verify_fleet(fleet.settings, "regions@champion") is True
    fallback = fleet.root / fleet.manifest["fallback"]["file"]
    original = fallback.read_bytes()
    try:
        fallback.write_bytes(original[:-2])
        with pytest.raises(UnsafeModelError, match="SHA-256"):
            verify_fleet(fleet.settings, "regions@champion")
    finally:
        fallback.write_bytes(original)


def test_without_a_fallback_an_unknown_segment_is_refused_by_name(
    fleet: Fleet, tmp_path: Path
) -> None:
    model = FleetModel(fleet.settings, {**fleet.manifest, "fallback": None}, tmp_path, 4)
    frame = fleet_frame(segments=2, rows=5, tiny=2, seed=1).assign(region="nowhere")
    with pytest.raises(DataError, match="no model for segment\\(s\\) 'nowhere'"):
        model.predict(frame)


def test_a_tampered_segment_file_is_refused_when_it_loads(fleet: Fleet, tmp_path: Path) -> None:
    entry = fleet.manifest["segments"]["s02"]
    path = fleet.root / entry["file"]
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\0")
        model = FleetModel(fleet.settings, fleet.manifest, tmp_path, cache_size=4)
        frame = fleet_frame(segments=4, rows=5, tiny=2, seed=2)
        model.predict(frame[frame["region"] == "s01"])  # other segments still load
        with pytest.raises(
            UnsafeModelError, match=r"segment 's02'.*SHA-256|SHA-256.*segment 's02'"
        ):
            model.predict(frame[frame["region"] == "s02"])
    finally:
        path.write_bytes(original)


def test_predict_scores_a_file_by_segment_as_the_models_do(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFACTORY_HOME", str(fleet.home))
    from mlfactory.settings import get_settings

    get_settings.cache_clear()
    frame = fleet_frame(segments=4, rows=60, tiny=10, seed=11)
    frame.drop(columns=["y"]).to_parquet(tmp_path / "input.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = runner.invoke(
            app,
            ["predict", "regions", "--input", str(tmp_path / "input.parquet"), "--output",
             str(tmp_path / "out"), "--key-columns", "region", "--partition-rows", "100"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.replace("│", " ").split())  # wrapped cells read whole
    assert "inference scikit-learn why a fleet's segment models are scored by" in summary
    scored = pd.read_parquet(tmp_path / "out")
    assert len(scored) == len(frame)
    features = ["x1", "x2", "x3", "region"]
    for key, group in frame.groupby("region"):
        model = fleet.models.get(key, fleet.fallback)
        mine = scored.iloc[group.index]
        assert (mine["region"] == key).all()
        np.testing.assert_allclose(
            mine["proba_1"].to_numpy(), model.predict_proba(group[features])[:, 1], atol=1e-12
        )


def test_monitor_model_finds_drift_in_the_segment_whose_traffic_moved(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = ["region", "x1", "x2", "x3"]
    frame = fleet_frame(segments=4, rows=80, tiny=2, seed=21)
    calm = frame[frame["region"] == "s00"]
    moved = frame[frame["region"] == "s01"].assign(x2=lambda f: f["x2"] + 3.0)
    application = create_app(fleet.settings, "regions", log_flush_interval_s=0.05)
    with BackgroundServer(application) as server, httpx.Client(base_url=server.url) as client:
        for part in (calm, moved):
            body = [
                {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                for r in part[features].to_dict("records")
            ]
            assert client.post("/predict", json=body, timeout=60).status_code == 200
    monkeypatch.setenv("MLFACTORY_HOME", str(fleet.home))
    from mlfactory.settings import get_settings

    get_settings.cache_clear()
    result = runner.invoke(app, ["monitor", "model", "regions", "--since", "1h"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output  # drift found
    assert "drift in 1 of 2 segment(s) judged: s01" in text
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "x2" in lines["s01"] and "no drift" in lines["s00"]
    assert "too few rows" in lines["tiny0"]


def test_explain_ranks_features_per_segment_with_their_own_rows(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFACTORY_HOME", str(fleet.home))
    from mlfactory.settings import get_settings

    get_settings.cache_clear()
    out = tmp_path / "explained"
    result = runner.invoke(
        app, ["explain", "regions", "--n-repeats", "3", "--top-k", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "segment_importance.csv")
    explained = table[table["status"] == "explained"]
    assert set(explained["segment"]) == {"s00", "s01", "s02", "s03", "__fallback__"}
    top = explained[explained["rank"] == 1].set_index("segment")["feature"]
    assert (top.drop("__fallback__") == "x1").all()  # the planted signal of every segment
    assert set(table.loc[table["status"] == "too few rows", "segment"]) <= {"tiny0", "tiny1"}
    assert "importance by segment" in (out / "report.html").read_text()
    assert "s03" in result.output and "x1" in result.output
