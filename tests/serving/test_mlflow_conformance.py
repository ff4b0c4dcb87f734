"""The conformance cases (benchmarks/mlflow_conformance.py) against ``mlflow models serve`` and
``mlfactory serve`` on the same registered model: no difference that docs/serving.md does not
list, and every listed difference is real."""

import importlib.util
import sys
from pathlib import Path

import pytest

from mlfactory.serving import create_app
from mlfactory.tracking import tracking_uri

ROOT = Path(__file__).resolve().parents[2]


def _conformance():
    path = ROOT / "benchmarks" / "mlflow_conformance.py"
    spec = importlib.util.spec_from_file_location("mlflow_conformance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


conformance = _conformance()


@pytest.fixture(scope="module")
def mlflow_url(registered, tmp_path_factory):
    """``mlflow models serve --env-manager local`` on credit/1 (a few seconds to start)."""
    log = tmp_path_factory.mktemp("mlflow-serve") / "mlflow.log"
    uri = tracking_uri(registered.settings)
    with conformance.serve_mlflow(uri, "models:/credit/1", log) as url:
        yield url


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Any type hint is inferred:UserWarning")  # mlflow's own types
def test_mlfactory_answers_as_mlflow_but_for_the_documented_differences(
    registered, mlflow_url, serve
):
    server = serve(create_app(registered.settings, "credit/1", log_predictions=False, onnx=True))
    frame = conformance.mixed_sample(registered.X, registered.pipeline.predict(registered.X))
    rows = conformance.compare(mlflow_url, server.url, frame)
    table = conformance.markdown(rows)
    split = next(row for row in rows if row.case.name == "dataframe_split")
    assert set(split.mlflow.predictions) == {0, 1}, "rows of both classes are compared"
    undocumented = [row.case.name for row in rows if row.verdict == "**UNDOCUMENTED**"]
    assert not undocumented, table
    stale = sorted(set(conformance.DOCUMENTED) - {row.case.name for row in rows if not row.same})
    assert not stale, f"listed as different, but answered the same: {stale}\n{table}"
    docs = (ROOT / "docs" / "serving.md").read_text()
    assert all(f"| {row.case.name} |" in docs for row in rows), "docs/serving.md: rerun the table"
