"""The main job, end to end, in quick mode: proves `make demo` works on a fresh clone."""

import mlflow
import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.demo import DemoContext, demo_stages
from mlfactory.settings import load_settings

runner = CliRunner()


@pytest.mark.slow
def test_quick_demo_runs_twice(isolated_home):
    first = runner.invoke(app, ["demo", "--quick"])
    assert first.exit_code == 0, first.output
    for stage in ("store", "data", "train", "promote", "explain", "serve", "monitor"):
        assert stage in first.output
    settings = load_settings()
    # rerun (idempotent: no duplicate-key errors, nothing new ingested or featurized)
    context = DemoContext(settings, quick=True)
    summaries = {stage.name: stage.run(context).summary for stage in demo_stages()}
    assert "(0 new rows, 0 featurized, 8 up to date)" in summaries["data"]
    assert "version 2 is now @champion" in summaries["promote"]
    with get_engine(settings.database_url).connect() as connection:
        logged = connection.exec_driver_sql("select sum(records) from prediction_requests").scalar()
        reports = connection.exec_driver_sql("select drifted from drift_reports").scalars().all()
    assert logged == 2 * 600  # two runs x (300 held-out + 300 shifted rows)
    assert len(reports) == 2 and all(reports)
    assert "monthly_income" in summaries["monitor"] and summaries["monitor"].startswith("DRIFT")
    report = settings.reports_dir / "explain" / "credit" / "report.html"
    assert report.read_text().count("data:image/png;base64,") >= 5

    client = mlflow.MlflowClient(settings.database_url)
    champion = client.get_model_version_by_alias("credit", "champion")
    assert str(champion.version) == "2"
    parents = mlflow.search_runs(
        experiment_names=["credit-demo"], filter_string="tags.`mlfactory.role` = 'parent'"
    )
    assert len(parents) == 2
    assert (parents["status"] == "FINISHED").all()
    assert (parents["metrics.test_roc_auc"] > 0.7).all()
