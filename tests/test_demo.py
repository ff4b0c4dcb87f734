"""The main job, end to end, in quick mode: proves `make demo` works on a fresh clone.

The demo is the factory line (examples/credit_line.toml) plus serving and a drift check: the
first run runs every stage of the line, the second finds every stage up to date.
"""

import re
import time

import mlflow
import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.line import STAGES, read_decisions
from mlfactory.settings import load_settings

runner = CliRunner()
LINE_STAGES = ("data", "dataset", "train", "gate", "promote", "explain", "monitor")


def _flat(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


@pytest.mark.slow
def test_quick_demo_runs_the_line_then_finds_it_up_to_date(isolated_home):
    assert set(LINE_STAGES) <= set(STAGES)
    first = runner.invoke(app, ["demo", "--quick"], env={"COLUMNS": "400"})
    assert first.exit_code == 0, first.output
    text = _flat(first.output)
    assert f"credit_line.toml: ran {', '.join(LINE_STAGES)} in" in text, text
    assert "stocks_line.toml: ran data, dataset, train, gate, promote in" in text, text
    for stage in ("store", "stocks", "line", "serve", "monitor", "retrain"):
        assert f" {stage} " in text
    # the drifted traffic retrained the credit line; on unchanged data the gate says tie
    assert "drift found: the line retrained" in text and "REJECT v2" in text, text
    assert "serving credit v1" in text
    settings = load_settings()
    engine = get_engine(settings.database_url)
    retrained, first_decision = read_decisions(engine, "credit")  # newest first
    assert first_decision["passed"] and "no champion" in first_decision["reason"]
    assert not retrained["passed"] and "ties champion v1" in retrained["reason"]

    started = time.perf_counter()
    second = runner.invoke(app, ["demo", "--quick"], env={"COLUMNS": "400"})
    seconds = time.perf_counter() - started
    assert second.exit_code == 0, second.output
    text = _flat(second.output)
    assert f"credit_line.toml: every stage up to date ({', '.join(LINE_STAGES)})" in text, text
    assert "stocks_line.toml: every stage up to date (data, dataset, train, gate, promote)" in text
    line_seconds = [float(s) for s in re.findall(r"\) in ([0-9.]+) s", text)]
    assert len(line_seconds) == 2 and max(line_seconds) < 5, line_seconds  # no-op checks
    assert seconds < 90, seconds  # serving, the drift check and the drift retrain run again
    decisions = read_decisions(engine, "credit")
    assert len(decisions) == 3 and not decisions[0]["passed"]  # the lines re-judged nothing

    with engine.connect() as connection:
        logged = connection.exec_driver_sql("select sum(records) from prediction_requests").scalar()
        reports = connection.exec_driver_sql(
            "select drifted from drift_reports where current = 'prediction log'"
        )
        drifted = reports.scalars().all()
    assert logged == 2 * 600  # two runs x (300 credit rows + 300 shifted rows)
    assert "monthly_income" in text and "DRIFT over the last hour" in text
    assert drifted and all(drifted)
    assert list((settings.home / "reports").rglob("report.html"))  # the line's explain report

    client = mlflow.MlflowClient(settings.database_url)
    assert str(client.get_model_version_by_alias("credit", "champion").version) == "1"


def test_the_packaged_demo_line_is_the_shipped_example():
    """Docker installs the package without examples/: it runs the packaged copy, kept identical."""
    from mlfactory.demo import DEMO_LINE, PACKAGED_LINE, SOURCE_LINE

    assert DEMO_LINE == SOURCE_LINE
    assert PACKAGED_LINE.read_bytes() == SOURCE_LINE.read_bytes()
    for name in ("stocks_line.toml", "stocks.toml"):  # the demo's stocks line and its spec
        assert (PACKAGED_LINE.parent / name).read_bytes() == (
            SOURCE_LINE.parent / name
        ).read_bytes()
