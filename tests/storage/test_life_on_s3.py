"""The whole life of a model on an object store, through the real CLI (issue #20).

moto's S3 server on a loopback port (authentication on), one bucket holding the data store, the
reports and MLflow's artifacts: ingest -> featurize on a LocalCluster (worker processes that see
only URLs and their environment) -> train -> promote -> serve (a separate `mlfactory serve`
process loading the model from S3, verified by hash) -> predict s3:// -> s3:// -> monitor ->
explain. The local home ends up with the SQLite database and the logs only, and the secret key
is in no log, param, tag, report, object or task graph.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import cloudpickle
import httpx
import pandas as pd
import pytest
from distributed import LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.serving._background import free_port

runner = CliRunner()

SPEC = """
name = "s3-stocks"
dataset = "stocks"
task = "classification"
preprocessing = "robust_knn"
model = "LogisticRegression"
test_size = 0.2
[cv]
kind = "walk_forward"
folds = 2
scoring = ["roc_auc"]
[search]
kind = "grid"
param_grid = {clf__C = [1.0]}
"""


class _Graphs(SchedulerPlugin):
    """Every task the scheduler receives, serialized as it would travel to a worker."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []

    def update_graph(self, scheduler, *, keys, **kwargs) -> None:
        for key in keys:
            state = scheduler.tasks.get(key)
            if state is not None and state.run_spec is not None:
                self.blobs.append(cloudpickle.dumps(state.run_spec))


def _json_row(row: dict) -> dict:
    return {
        k: None if isinstance(v, float) and v != v else str(v) if k == "date" else v
        for k, v in row.items()
    }


def _ok(*args: str, codes: tuple[int, ...] = (0,)) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code in codes, f"mlfactory {' '.join(args)}:\n{result.output}"
    return result.output


def _serve(port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "mlfactory", "serve", "stocks", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_up(url: str, process: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # distributed: port/dashboard notices
def test_life_of_a_model_on_s3_through_the_cli(s3_env, bucket, tmp_path, monkeypatch):
    store, artifacts = f"s3://{bucket}/store", f"s3://{bucket}/artifacts"
    monkeypatch.setenv("MLFACTORY_STORE_URL", store)
    monkeypatch.setenv("MLFACTORY_ARTIFACT_ROOT", artifacts)
    home = tmp_path / ".mlfactory"
    tickers = tmp_path / "tickers.csv"
    tickers.write_text("ticker,sector,subsector\nAAA,E,e\nBBB,F,f\nCCC,U,u\n")
    outputs = [_ok("info")]
    assert "read and write ok" in outputs[0]

    dates = ["--start", "2022-01-01", "--end", "2023-12-29"]
    outputs.append(_ok("data", "ingest", "--tickers", str(tickers), *dates))
    outputs.append(_ok("data", "status"))
    graphs = _Graphs()
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
    ) as cluster:
        cluster.scheduler.add_plugin(graphs)
        # the workers were started with this process's environment: that is all they get
        outputs.append(_ok("data", "featurize", "--scheduler", cluster.scheduler_address))
    assert re.search(r"tickers written\s*│\s*3\s*│", outputs[-1]), outputs[-1]
    assert len(graphs.blobs) == 3 and all(store.encode() in blob for blob in graphs.blobs)

    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    outputs.append(_ok("train", str(spec)))
    best = ["--best", "s3-stocks", "--metric", "test_roc_auc"]
    outputs.append(_ok("promote", *best, "--name", "stocks"))

    # serve: another process, the model downloaded from S3 and checked against its SHA-256
    from mlfactory.data import load_features

    frame = load_features().drop(columns=["ticker", "target"]).tail(30).reset_index(drop=True)
    rows = [_json_row(row) for row in frame.astype(object).to_dict(orient="records")]
    port = free_port()
    process = _serve(port)
    try:
        _wait_up(f"http://127.0.0.1:{port}", process)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=rows, timeout=30)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == len(rows)
    finally:
        process.terminate()
        served = process.communicate(timeout=60)[0]
    outputs.append(served)

    # predict from s3:// to s3://
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_env.endpoint, skip_instance_cache=True)
    with fs.open(f"{bucket}/input/rows.parquet", "wb") as handle:
        frame.to_parquet(handle)
    where = ["--input", f"s3://{bucket}/input/*.parquet", "--output", f"s3://{bucket}/scored"]
    outputs.append(_ok("predict", "stocks", *where))
    scored = fs.find(f"{bucket}/scored")
    assert [p.rsplit("/", 1)[1] for p in scored] == ["_MLFACTORY_PREDICT", "part-00000.parquet"]
    with fs.open(f"{bucket}/scored/part-00000.parquet", "rb") as handle:
        assert len(pd.read_parquet(handle)) == len(frame)

    # monitor the served model, explain it: the reports go to the store
    outputs.append(_ok("monitor", "model", "stocks", "--since", "1h", codes=(0, 1)))
    outputs.append(_ok("explain", "stocks@champion", "--max-rows", "30", "--n-repeats", "2"))
    objects = s3_env.objects(bucket)
    names = list(objects)
    assert any("/store/reports/drift-" in n and n.endswith("drift.html") for n in names)
    assert any("/store/reports/explain/" in n and n.endswith("report.html") for n in names)
    assert any(n.startswith(f"{bucket}/artifacts/s3-stocks/") for n in names)

    # the local home: the database and the logs, nothing else
    local = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
    assert {p.split("/")[0] for p in local} <= {
        "logs", "mlfactory.db", "mlfactory.db-wal", "mlfactory.db-shm", "mlfactory.db.init.lock",
    }, local  # fmt: skip

    # a model file changed in the bucket is refused by its hash, in one line
    model_files = [n for n in names if n.endswith("/model.skops")]
    assert len(model_files) == 1
    fs.pipe_file(model_files[0], objects[model_files[0]] + b"tampered")
    again = ["--input", f"s3://{bucket}/input/rows.parquet", "--output", f"s3://{bucket}/o"]
    result = runner.invoke(app, ["predict", "stocks", *again])
    assert result.exit_code != 0 and "sha-256" in result.output.lower(), result.output
    assert len(result.output.strip().splitlines()) <= 2 and "Traceback" not in result.output

    # the secret is nowhere: outputs, log file, database (params, tags), objects, task graphs
    secret = s3_env.secret.encode()
    assert secret not in "\n".join(outputs).encode()
    for path in home.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    for name, data in s3_env.objects(bucket).items():
        assert secret not in data, name
    assert not any(secret in blob for blob in graphs.blobs)
