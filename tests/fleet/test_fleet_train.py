"""Fleet training through the real CLI and library: SQLite, PostgreSQL and a Dask LocalCluster.

The data plants a different signal in each segment (tests/fleet/_fleet_data.py): one global
model cannot learn it, each segment's own model can, so the recorded scores can fail honestly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from _fleet_data import fleet_frame, write_fleet
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.db._tables import SEGMENT_RESULTS
from mlfactory.fleet import FALLBACK_KEY
from mlfactory.serialization import file_sha256, load_skops
from mlfactory.settings import Settings
from mlfactory.tracking import tracking_uri
from mlfactory.training import train

runner = CliRunner()


def _rows(settings: Settings, run_id: str) -> pd.DataFrame:
    table = SEGMENT_RESULTS
    with get_engine(settings.database_url).connect() as connection:
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id)
        return pd.read_sql(query, connection)


def _artifacts(settings: Settings, run_id: str) -> Path:
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="fleet", tracking_uri=tracking_uri(settings)
        )
    )


def test_cli_train_records_one_parent_run_a_table_and_a_verified_bundle(
    tmp_path: Path, settings: Settings
) -> None:
    spec = write_fleet(tmp_path / "data", segments=4, rows=160, tiny=20, mono=True)
    result = runner.invoke(app, ["train", str(spec), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert (
        "fleet fleet: 7 segments — 4 trained, 0 reused unchanged, 0 regressed, 1 failed, "
        "2 on the fallback" in " ".join(result.output.split())
    )

    client = MlflowClient(tracking_uri(settings))
    experiment = client.get_experiment_by_name("fleet")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("mlfactory.role") == "fleet"]
    children = [r for r in runs if r.data.tags.get("mlfactory.role") == "segment"]
    assert len(parents) == 1 and len(runs) == 2  # one parent, one child: the failed segment
    parent = parents[0]
    run_id = parent.info.run_id
    assert children[0].data.tags["mlfactory.segment"] == "mono"
    assert children[0].info.status == "FAILED"
    assert "one class" in children[0].data.tags["mlfactory.error"]
    assert children[0].data.tags["mlflow.parentRunId"] == run_id
    assert parent.data.metrics["segments_trained"] == 4
    assert parent.data.metrics["segments_fallback"] == 2
    assert parent.data.metrics["test_roc_auc"] > parent.data.metrics["fallback_test_roc_auc"] + 0.1

    rows = _rows(settings, run_id)
    status = dict(zip(rows["segment"], rows["status"], strict=True))
    assert status == {
        **{f"s{i:02d}": "trained" for i in range(4)},
        "tiny0": "fallback",
        "tiny1": "fallback",
        "mono": "failed",
        FALLBACK_KEY: "trained",
    }
    trained = rows[rows["status"] == "trained"].set_index("segment")
    for key in ("s00", "s01", "s02", "s03"):  # each own model learned its segment's sign
        assert trained.loc[key, "test_metrics"]["roc_auc"] > 0.85, trained.loc[key]
        assert trained.loc[key, "fallback_test_score"] < trained.loc[key, "test_metrics"]["roc_auc"]
        assert json.loads(trained.loc[key, "best_params"])["clf__C"] in (0.1, 1.0)
    assert rows.set_index("segment").loc["mono", "child_run_id"] == children[0].info.run_id

    folder = _artifacts(settings, run_id)
    parquet = pd.read_parquet(folder / "segment_results.parquet")
    assert list(parquet["segment"]) == list(rows["segment"])
    assert list(parquet["status"]) == list(rows["status"])
    manifest_file = folder / "manifest.json"
    assert file_sha256(manifest_file) == parent.data.tags["mlfactory.fleet_manifest_sha256"]
    manifest = json.loads(manifest_file.read_text())
    assert sorted(manifest["segments"]) == ["s00", "s01", "s02", "s03"]
    assert manifest["fallback"]["sha256"] == trained.loc[FALLBACK_KEY, "model_sha256"]
    assert manifest["small_segments"] == ["tiny0", "tiny1"]
    for key, entry in manifest["segments"].items():
        path = folder / entry["file"]
        assert file_sha256(path) == entry["sha256"] == trained.loc[key, "model_sha256"]
        model = load_skops(path, entry["sha256"], recorded_types=entry["types"])
        assert list(model.classes_) == [0, 1]
    assert {c["name"] for c in manifest["inputs"]} == {"region", "x1", "x2", "x3"}


@pytest.mark.postgres
def test_on_postgresql_unchanged_segments_are_reused_and_a_regressed_one_gets_a_child_run(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFACTORY_DB_URL", postgres_url)
    from mlfactory.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    spec = write_fleet(tmp_path / "data", segments=3, rows=150, tiny=20)
    first = train(spec, settings, n_jobs=1)
    assert first.summary()["trained"] == 3 and first.summary()["reused"] == 0
    assert first.tasks == 4  # the fallback and three segments
    # same labels (so the same split), but s01's x1 is shuffled: its signal is gone
    frame = fleet_frame(segments=3, rows=150, tiny=20, shuffled=("s01",))
    frame.to_parquet(tmp_path / "data" / "fleet.parquet")
    second = train(spec, settings, n_jobs=1)
    assert second.tasks == 2  # s01 and the fallback (its rows changed); s00, s02 not refitted
    rows = _rows(settings, second.run_id).set_index("segment")
    assert rows.loc["s00", "status"] == rows.loc["s02", "status"] == "reused"
    assert rows.loc["s01", "status"] == "regressed", rows
    assert "previous training" in rows.loc["s01", "error"]
    assert rows.loc[FALLBACK_KEY, "status"] == "trained"
    for key in ("s00", "s02"):  # referenced, not copied: the first run's file and hash
        entry = second.manifest["segments"][key]
        assert entry == {
            **first.manifest["segments"][key],
            "values": [key],
            "reused_in_run": second.run_id,
        }
        assert rows.loc[key, "model_file"].startswith(f"runs:/{first.run_id}/fleet/segments/")
        assert rows.loc[key, "cv_mean"] == pytest.approx(
            _rows(settings, first.run_id).set_index("segment").loc[key, "cv_mean"]
        )
    assert second.test_scores["roc_auc"] < first.test_scores["roc_auc"]  # s01 lost its signal
    child = MlflowClient(tracking_uri(settings)).get_run(rows.loc["s01", "child_run_id"])
    assert child.data.tags["mlfactory.segment"] == "s01"
    assert child.data.tags["mlflow.parentRunId"] == second.run_id
    assert len(_rows(settings, first.run_id)) == 6  # 3 segments, 2 small ones, the fallback


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_fleet_on_a_local_cluster_matches_an_in_process_search(
    tmp_path: Path, settings: Settings
) -> None:
    from dask.distributed import LocalCluster

    from mlfactory.spec import load_spec
    from mlfactory.training import SearchConfig, run_search

    spec_path = write_fleet(tmp_path / "data", segments=3, rows=150, tiny=20, pack_rows=200)
    # one worker process (two threads): the tasks still cross a process boundary, and a second
    # process only doubled the start-up (65 s -> 37 s for this training at load 12 on 2 cores)
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
    ) as cluster:
        result = train(spec_path, settings, scheduler=cluster.scheduler_address)
    assert result.summary()["trained"] == 3
    assert result.tasks == 4  # the fallback and three packs of one 150-row segment
    resolved = load_spec(spec_path).resolve(settings)
    keys = resolved.dataset.X["region"].iloc[resolved.train_idx]
    rows = keys == "s02"
    outcome = run_search(
        resolved.cells[0].pipeline,
        resolved.X_train[rows.to_numpy()],
        resolved.y_train[rows.to_numpy()],
        resolved.cv,
        SearchConfig(
            kind="grid",
            scoring=tuple(resolved.scoring),
            refit=resolved.refit,
            param_grid={"clf__C": [0.1, 1.0]},
        ),
        n_jobs=1,
    )
    table = result.table.set_index("segment")
    assert table.loc["s02", "cv_mean"] == pytest.approx(outcome.best_scores["roc_auc"], abs=1e-12)
    assert json.loads(table.loc["s02", "best_params"]) == outcome.best_params
