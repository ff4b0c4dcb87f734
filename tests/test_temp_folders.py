"""Commands that copy a model to a temporary folder remove it when they end, also on error.

Each command runs as a real ``mlfactory`` process with a private ``TMPDIR``, which must hold
exactly what it held before the command once the command has exited. (``serve`` already removed
its copy when it stopped, on Ctrl-C and when it could not bind.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest
from _credit_model import train_registered_credit

from mlfactory.datasets import load_dataset
from mlfactory.db import get_engine
from mlfactory.prediction_log import (
    LoggedRequest,
    create_prediction_log,
    insert_prediction_requests,
)

pytestmark = pytest.mark.slow

MLFACTORY = [sys.executable, "-m", "mlfactory"]


class Home(NamedTuple):
    home: Path
    rows: Path  # scoring input with every model column
    broken: Path  # scoring input that lacks a model column


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A registered credit model whose prediction log holds a few recent requests."""
    folder = tmp_path_factory.mktemp("tempfolders")
    settings, _ = train_registered_credit(folder, 400, "credit-temp")
    data = load_dataset("credit", settings=settings)
    frame = data.X.head(50).assign(**{str(data.y.name): data.y.head(50).to_numpy()})
    rows = folder / "rows.csv"
    frame.to_csv(rows, index=False)
    broken = folder / "broken.csv"
    frame.drop(columns=[frame.columns[0]]).to_csv(broken, index=False)
    engine = get_engine(settings.database_url)
    create_prediction_log(engine)
    sample = data.X.head(40)
    request = LoggedRequest(
        request_id="r1",
        model_name="credit",
        model_version="1",
        received_at=datetime.now(UTC),
        columns={c: sample[c].tolist() for c in sample.columns},
        predictions=[int(v) for v in data.y.head(40)],
        probabilities=None,
        model_ms=1.0,
    )
    with engine.begin() as connection:
        insert_prediction_requests(connection, [request])
    engine.dispose()
    return Home(settings.home, rows, broken)


@pytest.fixture
def private_tmp(tmp_path: Path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def _env(home: Home, private_tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env.update(MLFACTORY_HOME=str(home.home), TMPDIR=str(private_tmp))
    return env


def _run(home: Home, private_tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLFACTORY, *args],
        env=_env(home, private_tmp),
        cwd=private_tmp.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# onnxruntime writes one session-id file of this fixed name when imported; every later import
# reuses it, so it never accumulates (it is no copy of a model)
_ONNXRUNTIME_SESSION_FILE = ".ses"


def _entries(folder: Path) -> list[str]:
    return sorted(set(os.listdir(folder)) - {_ONNXRUNTIME_SESSION_FILE})


COMMANDS = {  # name: (arguments, succeeds; None = exit 0 or 1, as for a drift verdict)
    "predict": ("predict credit --input {rows} --output {out}", True),
    "predict fails": ("predict credit --input {broken} --output {out}", False),
    "explain": ("explain credit --data {rows} --n-repeats 1 --top-k 2 --out {out}", True),
    "explain fails": ("explain credit --data {broken} --out {out}", False),
    "monitor model": ("monitor model credit --since 1h --out {out}", None),
    "monitor model fails": ("monitor model credit --since 2w --until 1w", False),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_commands_leave_no_temporary_folder(home, private_tmp, tmp_path, name):
    args, succeeds = COMMANDS[name]
    before = _entries(private_tmp)
    values = {"rows": str(home.rows), "broken": str(home.broken), "out": str(tmp_path / "out")}
    result = _run(home, private_tmp, *[a.format(**values) for a in args.split()])
    output = result.stdout + result.stderr
    if succeeds is None:  # monitor model: 0 without drift, 1 with drift
        assert result.returncode in (0, 1) and "Traceback" not in output, output
    else:
        assert (result.returncode == 0) is succeeds, output
        assert "Traceback" not in output, output
    assert _entries(private_tmp) == before, f"{name} left temporary files behind"


def test_a_failing_load_removes_the_download(home, private_tmp, tmp_path):
    """The model file is damaged: the hash check fails after the download."""
    artifacts = home.home / "artifacts"
    files = sorted(artifacts.rglob("model.skops"))
    assert files
    saved = {file: file.read_bytes() for file in files}
    try:
        for file in files:
            file.write_bytes(saved[file] + b"tampered")
        out = str(tmp_path / "out")
        result = _run(
            home, private_tmp, "predict", "credit", "--input", str(home.rows), "--output", out
        )
        assert result.returncode != 0, result.stdout + result.stderr
        assert "SHA-256" in result.stdout + result.stderr
    finally:
        for file, content in saved.items():
            file.write_bytes(content)
    assert _entries(private_tmp) == []
