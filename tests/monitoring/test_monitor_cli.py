"""``mlfactory monitor``: exit codes 0 (no drift), 1 (drift), 2 (error); model end to end."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.cli._monitor import Freq
from mlfactory.datasets import load_dataset
from mlfactory.db import get_engine
from mlfactory.monitoring import WindowFreq, monitor_model, read_drift_reports
from mlfactory.prediction_log import (
    LoggedRequest,
    create_prediction_log,
    insert_prediction_requests,
)
from mlfactory.registry import load_model, promote
from mlfactory.settings import load_settings
from mlfactory.training import train

runner = CliRunner()


def _files(tmp_path, shift: float):
    rng = np.random.default_rng(0)
    n = 500
    reference = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(list("xyz"), n)})
    current = pd.DataFrame({"a": rng.normal(shift, 1.0, size=n), "b": rng.choice(list("xyz"), n)})
    ref_path, cur_path = tmp_path / "reference.parquet", tmp_path / "current.csv"
    reference.to_parquet(ref_path)
    current.to_csv(cur_path, index=False)
    return str(ref_path), str(cur_path)


def test_drift_exit_codes_and_outputs(tmp_path, isolated_home):
    (tmp_path / "clean").mkdir()
    ref, _ = _files(tmp_path / "clean", 0.0)
    same = runner.invoke(app, ["monitor", "drift", "--reference", ref, "--current", ref])
    assert same.exit_code == 0, same.output
    assert "no drift" in same.output
    ref2, shifted = _files(tmp_path, 1.0)
    out = tmp_path / "report"
    drifted = runner.invoke(
        app,
        ["monitor", "drift", "--reference", ref2, "--current", shifted, "--out", str(out)],
    )
    assert drifted.exit_code == 1, drifted.output
    assert "DRIFT" in drifted.output
    assert (out / "drift.html").exists() and (out / "drift.json").exists()
    rows = read_drift_reports(get_engine(load_settings().database_url))
    assert rows["drifted"].astype(bool).tolist() == [False, True]
    missing = runner.invoke(app, ["monitor", "drift", "--reference", ref, "--current", "nope"])
    assert missing.exit_code == 2
    assert "neither an existing file nor a dataset" in missing.output
    bad_column = runner.invoke(
        app, ["monitor", "drift", "--reference", ref, "--current", ref, "-c", "zz"]
    )
    assert bad_column.exit_code == 2 and "zz not in the reference" in bad_column.output


def test_windows_command(tmp_path):
    rng = np.random.default_rng(2)
    dates = pd.date_range("2018-03-01", periods=365 * 3, freq="D")
    values = rng.normal(0, 0.01, len(dates)) * np.where(dates >= "2020-03-01", 3.0, 1.0)
    path = tmp_path / "prices.parquet"
    pd.DataFrame({"day": dates, "returns": values}).to_parquet(path)
    args = ["monitor", "windows", "--data", str(path), "--column", "returns"]
    result = runner.invoke(app, [*args, "--anchor-month", "3", "--date-column", "day"])
    assert result.exit_code == 1, result.output
    assert "│ 2019-03 │ 2020-03 │" in result.output  # windows named by their first month
    assert "1 of 2 consecutive pairs drifted" in result.output
    wrong = runner.invoke(app, [*args, "--date-column", "when"])
    assert wrong.exit_code == 2 and "column 'when' not found" in wrong.output
    assert [f.value for f in Freq] == [f.value for f in WindowFreq]


SPEC = """
name = "monitored"
dataset = "breast_cancer"
preprocessing = "basic"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "none"
"""


@pytest.fixture(scope="module")
def promoted(tmp_path_factory):
    home = tmp_path_factory.mktemp("monitored")
    settings = load_settings(home=home / ".mlfactory")
    spec = home / "monitored.toml"
    spec.write_text(SPEC)
    result = train(spec, settings)
    info = promote(settings, "monitored", run_id=result.run_id)
    return settings, info


def _log_predictions(settings, version, frame, labels, when, probabilities) -> None:
    engine = get_engine(settings.database_url)
    create_prediction_log(engine)
    requests = []
    for start in range(0, len(frame), 10):  # requests of 10 records, as a client would send
        part = frame.iloc[start : start + 10]
        p0 = [float(p) for p in probabilities[start : start + 10]]
        requests.append(
            LoggedRequest(
                request_id=f"r{start // 10}",
                model_name="monitored",
                model_version=version,
                received_at=when,
                columns={name: [float(v) for v in part[name]] for name in part.columns},
                predictions=[int(label) for label in labels[start : start + 10]],
                probabilities={"0": p0, "1": [1.0 - p for p in p0]},
                model_ms=1.0,
            )
        )
    with engine.begin() as connection:
        insert_prediction_requests(connection, requests)


def test_monitor_model_end_to_end(promoted, monkeypatch, tmp_path):
    settings, info = promoted
    data = load_dataset("breast_cancer")
    now = datetime.now(UTC)
    # yesterday: rows like the training data, scored by the model itself
    model = load_model(settings, "monitored").model
    clean = data.X.sample(300, random_state=1)
    yesterday, recently = now - timedelta(hours=30), now - timedelta(minutes=30)
    p0 = model.predict_proba(clean)[:, 0]
    _log_predictions(settings, info.version, clean, model.predict(clean), yesterday, p0)
    # last hour: tumours 60% larger, and the service predicts "malignant" (0) for all of them
    shifted = clean.copy()
    for column in ("mean_radius", "mean_perimeter", "mean_area", "worst_radius"):
        shifted[column] *= 1.6
    n = len(shifted)
    _log_predictions(settings, info.version, shifted, [0] * n, recently, [0.95] * n)

    quiet = monitor_model(settings, "monitored", since="48h", until="24h")
    assert not quiet.drifted, quiet.reasons
    assert quiet.n_current == 300 and quiet.model == f"monitored/{info.version}"
    assert 300 < quiet.n_reference < len(data.X)  # the training rows of the split

    report = monitor_model(settings, "monitored@champion", since="1h")
    assert {"mean_radius", "mean_area", "worst_radius"} <= set(report.drifted_features)
    labels, probability = report.predictions
    assert labels.column == "prediction" and labels.kind == "categorical" and labels.drifted
    assert probability.column == "probability[1]" and probability.drifted
    assert probability.details["mean_current"] == pytest.approx(0.05)
    assert [p.status for p in quiet.predictions] == ["ok", "ok"]
    assert report.window_start < now and report.window_end >= now

    monkeypatch.setenv("MLFACTORY_HOME", str(settings.home))
    cli = runner.invoke(
        app, ["monitor", "model", "monitored", "--since", "1h", "--out", str(tmp_path / "r")]
    )
    assert cli.exit_code == 1, cli.output
    assert "DRIFT" in cli.output
    rows = read_drift_reports(get_engine(settings.database_url), model=f"monitored/{info.version}")
    assert len(rows) == 1 and bool(rows.loc[0, "drifted"])
    empty = runner.invoke(app, ["monitor", "model", "monitored", "--since", "2w", "--until", "1w"])
    assert empty.exit_code == 2 and "no predictions logged" in empty.output
    unknown = runner.invoke(app, ["monitor", "model", "absent"])
    assert unknown.exit_code == 2 and "not found" in unknown.output
