"""The fleet registry through the CLI: ``models show --json``, one kind of model per name,
``promote --best`` for fleets, and reuse of segment models from any earlier training.

One module fixture trains three fleets of one experiment on data A, then B (two segments' x1 is
shuffled: no signal), then A again, and one single model on data A; the tests only read those
trainings and each registers under its own name.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from _fleet_data import fleet_frame, write_fleet
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.db._tables import SEGMENT_RESULTS
from mlfactory.fleet import FALLBACK_KEY, FleetResult
from mlfactory.line import read_decisions
from mlfactory.registry import describe_model
from mlfactory.settings import Settings, get_settings, load_settings
from mlfactory.training import train

runner = CliRunner()
SEGMENTS = dict(segments=4, rows=150, tiny=20)
NOISE = ("s00", "s01")


@dataclass
class Trainings:
    home: Path
    settings: Settings
    a: FleetResult  # data A
    b: FleetResult  # data B: s00 and s01 lose their signal (same labels, same split)
    again: FleetResult  # data A again
    single: str  # the run of a single model trained on data A


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trainings:
    folder = tmp_path_factory.mktemp("fleet-registry")
    settings = load_settings(home=folder / ".mlfactory")
    spec = write_fleet(folder / "data", **SEGMENTS)
    data = folder / "data" / "fleet.parquet"
    first = data.with_name("a.parquet")
    shutil.copy(data, first)
    a = train(spec, settings, n_jobs=1)
    fleet_frame(**SEGMENTS, shuffled=NOISE).to_parquet(data)
    b = train(spec, settings, n_jobs=1)
    shutil.copy(first, data)
    again = train(spec, settings, n_jobs=1)
    single_spec = folder / "data" / "single.toml"
    text = spec.read_text().split("[segments]")[0].replace('name = "fleet"', 'name = "single"')
    single_spec.write_text(text)
    single = train(single_spec, settings, n_jobs=1).run_id
    return Trainings(folder / ".mlfactory", settings, a, b, again, single)


@pytest.fixture
def cli_home(trained: Trainings, monkeypatch: pytest.MonkeyPatch) -> Trainings:
    """The CLI of this test works on the module's store."""
    monkeypatch.setenv("MLFACTORY_HOME", str(trained.home))
    get_settings.cache_clear()
    return trained


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split())


def _rows(settings: Settings, run_id: str) -> pd.DataFrame:
    table = SEGMENT_RESULTS
    with get_engine(settings.database_url).connect() as connection:
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id)
        return pd.read_sql(query, connection).set_index("segment")


def test_models_show_json_gives_the_fleet_summary_and_every_segment(cli_home: Trainings) -> None:
    code, text = _invoke("promote", cli_home.a.run_id[:8], "--name", "shown")
    assert code == 0, text
    result = runner.invoke(app, ["models", "show", "shown", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["name"] == "shown" and [v["version"] for v in shown["versions"]] == ["1"]
    fleet = shown["fleet"]
    assert fleet["version"] == "1" and fleet["aliases"] == ["champion"]
    assert fleet["by"] == ["region"]
    assert fleet["segments"] == 4 and fleet["small_segments"] == 2
    assert fleet["fallback"] == "global"
    assert fleet["fallback_share"] == pytest.approx(2 / 6)
    metric = fleet["metric"]
    assert metric == "test_roc_auc"
    worst = [row[metric] for row in fleet["worst"]]
    assert worst == sorted(worst) and len(worst) == 4
    rows = {row["segment"]: row for row in fleet["rows"]}
    assert set(rows) == {"s00", "s01", "s02", "s03", "tiny0", "tiny1", FALLBACK_KEY}
    assert rows["tiny0"] == {"segment": "tiny0", "model": "fallback"}
    recorded = _rows(cli_home.settings, cli_home.a.run_id)
    for key in ("s00", "s01", "s02", "s03"):
        row = rows[key]
        assert row["model"] == "own" and row["values"] == [key]
        assert row["trained_in_version"] == "1" and row["trained_in_run"] == cli_home.a.run_id
        assert row["sha256"] == recorded.loc[key, "model_sha256"]
        assert row["metrics"][metric] == pytest.approx(recorded.loc[key, "test_metrics"]["roc_auc"])
        assert row["train_rows"] == recorded.loc[key, "train_rows"]
    assert rows[FALLBACK_KEY]["model"] == "fallback"
    assert rows[FALLBACK_KEY]["sha256"] == recorded.loc[FALLBACK_KEY, "model_sha256"]
    assert min(worst) == min(rows[k]["metrics"][metric] for k in ("s00", "s01", "s02", "s03"))

    code, text = _invoke("models", "show", "shown")  # the plain table still summarises
    assert code == 0 and "fleet v1 by region: 4 segment models" in text, text


def test_a_name_holds_one_kind_of_model_both_ways(cli_home: Trainings) -> None:
    settings = cli_home.settings
    code, text = _invoke("promote", cli_home.a.run_id[:8], "--name", "kinds-fleet")
    assert code == 0, text
    code, text = _invoke("promote", cli_home.single[:8], "--name", "kinds-fleet")
    assert code == 1, text
    assert (
        "model 'kinds-fleet' holds fleets (version 1 is a fleet): a single model is not "
        "registered under it" in text
    )
    versions = describe_model(settings, "kinds-fleet")
    assert [(v.version, v.aliases) for v in versions] == [("1", ["champion"])]

    code, text = _invoke("promote", cli_home.single[:8], "--name", "kinds-single")
    assert code == 0, text
    code, text = _invoke("promote", cli_home.a.run_id[:8], "--name", "kinds-single")
    assert code == 1, text
    assert (
        "model 'kinds-single' holds single models (version 1 is not a fleet): a fleet is not "
        "registered under it" in text
    )
    versions = describe_model(settings, "kinds-single")
    assert [(v.version, v.aliases) for v in versions] == [("1", ["champion"])]
    assert versions[0].tags.get("fleet") is None
    # refused before the gate: no decision was recorded for either name
    engine = get_engine(settings.database_url)
    assert read_decisions(engine, "kinds-single") == []
    assert len(read_decisions(engine, "kinds-fleet")) == 1  # the fleet's own promotion


def test_promote_best_registers_the_best_fleet_training_through_the_gate(
    cli_home: Trainings,
) -> None:
    a, b, again = cli_home.a, cli_home.b, cli_home.again
    assert b.test_scores["roc_auc"] < a.test_scores["roc_auc"] - 0.05  # two noise segments
    best = max((a, again), key=lambda r: (r.test_scores["roc_auc"], r is again))
    code, text = _invoke("promote", "--best", "fleet", "--name", "best", "--metric", "test_roc_auc")
    assert code == 0, text
    assert f"best fleet training of fleet: run {best.run_id[:8]}" in text
    assert "registered fleet best version 1 (@champion)" in text
    versions = describe_model(cli_home.settings, "best")
    assert versions[0].run_id == best.run_id and versions[0].tags["fleet"] == "true"
    decision = read_decisions(get_engine(cli_home.settings.database_url), "best")[0]
    assert decision["passed"]
    assert {r["metric"] for r in decision["rules"]} == {"s00", "s01", "s02", "s03", FALLBACK_KEY}
    assert {r["rule"] for r in decision["rules"]} == {"segment"}

    code, text = _invoke("promote", "--best", "fleet", "--name", "best2", "--metric", "test_r2")
    assert code == 1 and "no finished fleet training with metric 'test_r2'" in text, text


def test_a_segment_equal_to_any_earlier_training_is_reused_from_it(trained: Trainings) -> None:
    a, b, again = trained.a, trained.b, trained.again
    rows_b = _rows(trained.settings, b.run_id)
    assert rows_b.loc["s00", "status"] == rows_b.loc["s01", "status"] == "regressed"  # noise
    assert rows_b.loc["s02", "status"] == rows_b.loc["s03", "status"] == "reused"
    # data A again: every model of training A is reused, none fitted (B's differ for s00, s01)
    assert again.tasks == 0
    rows = _rows(trained.settings, again.run_id)
    for key in ("s00", "s01", "s02", "s03", FALLBACK_KEY):
        assert rows.loc[key, "status"] == "reused", rows
        assert (
            rows.loc[key, "model_sha256"]
            == _rows(trained.settings, a.run_id).loc[key, "model_sha256"]
        )
        assert rows.loc[key, "model_file"].startswith(f"runs:/{a.run_id}/fleet/")
    for key in NOISE:
        entry = again.manifest["segments"][key]
        assert entry == {**a.manifest["segments"][key], "reused_in_run": again.run_id}
    assert again.test_scores == pytest.approx(a.test_scores)
    assert rows.loc["s00", "data_sha256"] == a.manifest["segments"]["s00"]["data_sha256"]
    assert rows.loc["s00", "config_sha256"] == a.manifest["config_sha256"]
