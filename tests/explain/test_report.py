"""End-to-end reports from trained (and promoted) models, their artifacts, and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from mlfactory.cli._common import MlfactoryGroup
from mlfactory.cli._explain import explain_command
from mlfactory.datasets import load_diabetes
from mlfactory.exceptions import DataError, ModelNotFound
from mlfactory.explain import PLOTS, explain_model, load_explain_data, open_model
from mlfactory.registry import promote
from mlfactory.settings import load_settings
from mlfactory.tracking import open_tracking
from mlfactory.training import train

IMG = '<img src="data:image/png;base64,'

CLASSIFIER = """
name = "cancer-explain"
dataset = "breast_cancer"
model = "RandomForest"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc", "accuracy"]
[search]
kind = "grid"
param_grid = {clf__n_estimators = [10], clf__max_depth = [4]}
"""

REGRESSOR = """
name = "diabetes-explain"
dataset = {{path = "{path}", target = "target"}}
model = "Ridge"
seed = 0
[cv]
folds = 2
scoring = ["r2"]
[search]
kind = "none"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("explain")
    settings = load_settings(home=home / ".mlfactory")
    (home / "cancer.toml").write_text(CLASSIFIER)
    cancer = train(home / "cancer.toml", settings)
    promote(settings, "cancer-rf", run_id=cancer.run_id)
    diabetes = load_diabetes()
    table = diabetes.X.assign(target=diabetes.y)
    table.to_csv(home / "diabetes.csv", index=False)
    (home / "diabetes.toml").write_text(REGRESSOR.format(path=home / "diabetes.csv"))
    regression = train(home / "diabetes.toml", settings)
    return settings, cancer, regression, home


def _explain_dir(settings, run_id: str) -> list[str]:
    client = open_tracking(settings)
    return sorted(Path(a.path).name for a in client.list_artifacts(run_id, "explain"))


def test_classifier_report_from_the_registry(trained, tmp_path):
    settings, cancer, _, _ = trained
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "unrelated.txt").write_text("not part of the report")
    report = explain_model(
        settings, "cancer-rf@champion", max_rows=60, n_repeats=2, top_k=3, out=tmp_path / "r"
    )
    e = report.explanation
    # default data: the run's held-out test set (20 % of 569 rows), sampled to 60 rows
    assert e.total_rows == 114 and e.rows == 60
    assert "held-out test set" in e.data_source and e.note == ""
    assert e.importance.scoring == "roc_auc"  # the run's refit metric
    assert e.shap.kind == "tree" and e.shap.scale == "probability"
    html = report.html.read_text()
    assert html.count(IMG) == len(PLOTS) == 6
    assert "Computed on 60 rows" in html
    assert not re.search(r"(src|href)=\"https?:", html)  # self-contained
    assert {p.name for p in tmp_path.joinpath("r").glob("*.png")} == {f"{s}.png" for s in PLOTS}
    logged = _explain_dir(settings, cancer.best.run_id)
    assert "report.html" in logged and "shap_beeswarm.png" in logged
    assert "importance.csv" in logged and "unrelated.txt" not in logged
    assert report.artifact_uri.endswith("/explain")


def test_regressor_report_from_a_run_id(trained, tmp_path):
    settings, _, regression, _ = trained
    report = explain_model(
        settings, regression.run_id, row=5, max_rows=80, n_repeats=2, top_k=3, out=tmp_path / "r"
    )
    e = report.explanation
    assert e.shap.kind == "linear" and e.shap.scale == "prediction"
    assert e.importance.scoring == "r2" and e.rows == 80
    assert e.row == 5 and len(e.row_shap.values) == 1
    # the waterfall row adds up to the model's prediction of that row of the test set
    data = load_explain_data(settings, open_model(settings, regression.run_id), None)
    model = open_model(settings, regression.run_id).pipeline
    total = e.row_shap.base_value + e.row_shap.values.to_numpy().sum()
    assert total == pytest.approx(model.predict(data.X.iloc[[5]])[0])
    assert report.html.read_text().count(IMG) == 6
    assert "report.html" in _explain_dir(settings, regression.run_id)


def test_reference_sample_when_the_dataset_is_gone(trained, tmp_path):
    settings, _, regression, home = trained
    source = home / "diabetes.csv"
    moved = home / "moved.csv"
    source.rename(moved)
    try:
        model = open_model(settings, regression.run_id)
        data = load_explain_data(settings, model, None)
    finally:
        moved.rename(source)
    assert "reference sample" in data.source and "training rows" in data.note
    assert list(data.X.columns) == model.input_columns and data.y.name == "target"
    # an explicit file with the model's columns and the target works too
    from_file = load_explain_data(settings, model, str(source))
    assert len(from_file.X) == 442 and from_file.source == f"file {source}"


def test_bad_input_is_refused_before_any_output(trained, tmp_path):
    settings, _, regression, home = trained
    out = tmp_path / "never"
    with pytest.raises(ModelNotFound, match=r"run '0+' not found"):
        explain_model(settings, "0" * 32, out=out)
    with pytest.raises(ModelNotFound, match="registered model 'nope' not found"):
        explain_model(settings, "nope@champion", out=out)
    with pytest.raises(DataError, match=r"--row 500 out of range: the data has 89 rows"):
        explain_model(settings, regression.run_id, row=500, out=out)
    partial = pd.read_csv(home / "diabetes.csv").drop(columns=["bmi", "s5"])
    partial.to_csv(tmp_path / "partial.csv", index=False)
    with pytest.raises(DataError, match=r"lacks column.*bmi, s5"):
        explain_model(settings, regression.run_id, data=str(tmp_path / "partial.csv"), out=out)
    with pytest.raises(DataError, match="not found"):
        explain_model(settings, regression.run_id, data=str(tmp_path / "absent.csv"), out=out)
    assert not out.exists()


def _cli() -> typer.Typer:
    app = typer.Typer(cls=MlfactoryGroup)
    app.command("explain")(explain_command)

    @app.callback()
    def _root() -> None:
        """Test group around the explain command."""

    return app


def test_cli_prints_paths_and_top_features(trained, tmp_path, monkeypatch):
    settings, _, regression, _ = trained
    monkeypatch.setenv("MLFACTORY_HOME", str(settings.home))
    runner = CliRunner()
    args = ["explain", regression.run_id, "--max-rows", "50", "--n-repeats", "2"]
    result = runner.invoke(_cli(), [*args, "--top-k", "3", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "top 3 features" in result.output and "report:" in result.output
    assert "on 50 rows" in result.output
    assert (tmp_path / "o" / "report.html").is_file()

    bad_row = runner.invoke(_cli(), ["explain", regression.run_id, "--row", "1000"])
    assert bad_row.exit_code == 1
    assert "--row 1000 out of range" in bad_row.output
    missing = runner.invoke(_cli(), ["explain", "nope"])
    assert missing.exit_code == 1 and "registered model 'nope' not found" in missing.output
    assert "Traceback" not in missing.output
