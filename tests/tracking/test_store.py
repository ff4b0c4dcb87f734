import mlflow
import pytest

from mlfactory.db import get_engine
from mlfactory.settings import load_settings
from mlfactory.tracking import (
    TUNING_RESULTS,
    append_rows,
    experiment_for,
    open_tracking,
    read_table,
    tracked_run,
)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, isolated_home):
    if request.param == "postgres":
        return load_settings(db_url=request.getfixturevalue("postgres_url"))
    return load_settings()


def test_runs_land_in_the_settings_database(settings):
    client = open_tracking(settings)
    experiment_id = experiment_for(client, "demo-exp", settings)
    with tracked_run(client, experiment_id, "r1", tags={"k": "v"}) as run_id:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_metric("test_roc_auc", 0.75)
    found = mlflow.search_runs(experiment_names=["demo-exp"], output_format="list")
    assert [r.info.run_id for r in found] == [run_id]
    assert found[0].data.params["alpha"] == "0.5"
    assert found[0].data.metrics["test_roc_auc"] == 0.75
    assert found[0].info.status == "FINISHED"
    location = client.get_experiment(experiment_id).artifact_location
    assert location.startswith("file://") and "demo-exp" in location


def test_failed_and_interrupted_runs_never_stay_running(settings):
    client = open_tracking(settings)
    experiment_id = experiment_for(client, "fails", settings)
    with pytest.raises(ValueError), tracked_run(client, experiment_id, "boom") as failed:
        raise ValueError("boom")
    with pytest.raises(KeyboardInterrupt), tracked_run(client, experiment_id, "ctrl-c") as killed:
        raise KeyboardInterrupt
    assert client.get_run(failed).info.status == "FAILED"
    assert client.get_run(killed).info.status == "KILLED"


def test_results_tables_are_plain_sql(settings):
    open_tracking(settings)
    engine = get_engine(settings.database_url)
    rows = [
        {
            "run_id": "abc",
            "experiment": "e",
            "cell": "power/LogisticRegression",
            "candidate": i,
            "metric": "roc_auc",
            "mean_test_score": 0.5 + i / 10,
            "status": "ok",
            "params": "{}",
        }
        for i in range(3)
    ]
    assert append_rows(engine, TUNING_RESULTS, rows) == 3
    table = read_table(engine, TUNING_RESULTS, run_id="abc")
    assert table["mean_test_score"].tolist() == pytest.approx([0.5, 0.6, 0.7])
    with engine.connect() as connection:
        count = connection.exec_driver_sql(
            "select count(*) from tuning_results where run_id = 'abc'"
        ).scalar()
    assert count == 3
