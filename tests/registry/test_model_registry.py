from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import load_dataset
from mlfactory.exceptions import ModelNotFound
from mlfactory.registry import describe_model, load_model, parse_model_ref, promote
from mlfactory.serialization import UnsafeModelError
from mlfactory.settings import load_settings
from mlfactory.training import train

runner = CliRunner()

SPEC = """
name = "cancer"
dataset = "breast_cancer"
preprocessing = "basic"
model = ["LogisticRegression", "KNN"]
seed = 0
[cv]
folds = 2
scoring = ["roc_auc", "accuracy"]
[search]
kind = "none"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("registry")
    settings = load_settings(home=home / ".mlfactory")
    spec = home / "cancer.toml"
    spec.write_text(SPEC)
    result = train(spec, settings)
    return settings, result


def test_promote_best_moves_champion_and_loads_verified(trained):
    settings, result = trained
    first = promote(settings, "cancer", run_id=result.run_id)  # matrix parent -> best cell
    assert first.version == "1" and first.run_id == result.best.run_id
    assert first.tags["spec"] == "cancer"
    assert first.metrics["test_roc_auc"] == pytest.approx(result.best.test_scores["roc_auc"])
    worst = min(result.cells, key=lambda c: c.test_scores["accuracy"])
    second = promote(settings, "cancer", run_id=worst.run_id, alias="challenger")
    third = promote(settings, "cancer", best_of="cancer", metric="test_accuracy")
    assert (second.version, third.version) == ("2", "3")
    best_by_accuracy = max(result.cells, key=lambda c: c.test_scores["accuracy"])
    assert third.run_id == best_by_accuracy.run_id

    versions = {v.version: v.aliases for v in describe_model(settings, "cancer")}
    assert versions == {"3": ["champion"], "2": ["challenger"], "1": []}

    loaded = load_model(settings, "cancer")  # bare name = champion
    assert loaded.info.version == "3"
    assert loaded.classes == [0, 1]
    X = load_dataset("breast_cancer").X.head(30)
    assert loaded.feature_names == list(X.columns)
    expected = best_by_accuracy.outcome.best_estimator.predict_proba(X)
    np.testing.assert_allclose(loaded.model.predict_proba(X), expected)
    assert load_model(settings, "cancer/2").info.run_id == worst.run_id
    assert load_model(settings, "cancer@challenger").info.version == "2"


def test_tampered_model_file_is_refused(trained, tmp_path):
    settings, result = trained
    promote(settings, "tamper", run_id=result.best.run_id)
    loaded = load_model(settings, "tamper", cache_dir=tmp_path / "first")
    # a modified artifact in the store is caught by its recorded hash
    store_file = _stored_model_file(settings, loaded.info.source)
    original = store_file.read_bytes()
    assert original == (loaded.path / "model.skops").read_bytes()
    try:
        store_file.write_bytes(original + b"\0")
        with pytest.raises(UnsafeModelError, match=r"model\.skops has SHA-256"):
            load_model(settings, "tamper", cache_dir=tmp_path / "second")
    finally:
        store_file.write_bytes(original)  # the other tests share the store, pass or fail


def _stored_model_file(settings, source):

    logged = mlflow.get_logged_model(source.removeprefix("models:/"))

    return Path(urlparse(logged.artifact_location).path) / "model.skops"


def test_bad_references_are_clear(trained):
    settings, result = trained
    with pytest.raises(ModelNotFound, match="registered model 'nope' not found"):
        load_model(settings, "nope@champion")
    with pytest.raises(ModelNotFound, match="malformed"):
        parse_model_ref("a b")
    promote(settings, "bad-refs", run_id=result.best.run_id)  # its own model: runs alone too
    with pytest.raises(ModelNotFound, match="no such version or alias"):
        load_model(settings, "bad-refs/99")
    with pytest.raises(ModelNotFound, match="metric 'test_r2'"):
        promote(settings, "x", best_of="cancer", metric="test_r2")
    with pytest.raises(ModelNotFound, match=r"run '0+' not found"):
        promote(settings, "x", run_id="0" * 32)


def test_cli_promote_list_show(trained, monkeypatch):
    settings, _ = trained
    monkeypatch.setenv("MLFACTORY_HOME", str(settings.home))
    promoted = runner.invoke(app, ["promote", "--best", "cancer", "--name", "cli-model"])
    assert promoted.exit_code == 0, promoted.output
    assert "version 1" in promoted.output
    listed = runner.invoke(app, ["models", "list"])
    assert "cli-model" in listed.output and "champion->v1" in listed.output
    shown = runner.invoke(app, ["models", "show", "cli-model"])
    assert shown.exit_code == 0 and "champion" in shown.output
    missing = runner.invoke(app, ["models", "show", "absent"])
    assert missing.exit_code == 1 and "not found" in missing.output
