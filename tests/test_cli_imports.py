"""Each command imports the heavy libraries its work needs, and no other (issue #21).

Every command runs for real in a fresh interpreter, on an SQLite database at the schema's head
and two small parquet samples; the heavy top-level packages loaded when it exits are compared
with the set it is allowed. ``benchmarks/cli_startup.py --commands`` times the same invocations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

# the libraries worth guarding: each costs 0.1-2 s to import
HEAVY = frozenset({
    "pandas", "numpy", "sklearn", "scipy", "pyarrow", "dask", "distributed", "matplotlib",
    "mlflow", "skops", "onnxruntime", "shap", "fastapi", "starlette", "uvicorn", "jinja2",
    "sqlalchemy", "psycopg", "alembic", "pydantic_settings", "polars",
})  # fmt: skip

SETTINGS = {"pydantic_settings"}  # every command that runs reads its settings
DATABASE = SETTINGS | {"sqlalchemy"}
FRAMES = SETTINGS | {"numpy", "pandas", "pyarrow"}
# MLflow's own imports (its tracking client loads pandas, scipy, polars, FastAPI's models...)
MLFLOW = DATABASE | FRAMES | {"mlflow", "scipy", "polars", "fastapi", "starlette", "alembic"}

# (arguments, what the command may import); the samples are a.parquet and b.parquet
COMMANDS = [
    (["db", "status"], DATABASE),
    (["monitor", "drift", "--reference", "a.parquet", "--current", "b.parquet"],
     DATABASE | FRAMES | {"scipy"}),
    (["monitor", "windows", "--data", "a.parquet", "--column", "x", "--date-column", "date"],
     FRAMES | {"scipy"}),
    (["spec", "validate", str(ROOT / "examples" / "credit_matrix.toml")],
     FRAMES | {"sklearn", "scipy"}),
    (["data", "status"], FRAMES),
    # MLflow's expected schema comes from a snapshot of the installed MLflow (resources/)
    (["info"], DATABASE),
    (["runs", "list"], DATABASE),  # an empty store: found so without MLflow
]  # fmt: skip

_PROBE = """
import atexit, json, sys
heavy = set(json.loads(sys.argv[2]))
atexit.register(lambda: sys.stderr.write(
    "LOADED " + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)) + "\\n"))
sys.argv = ["mlfactory", *json.loads(sys.argv[1])]
from mlfactory.cli import main
main()
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    return {**env, "MLFACTORY_HOME": str(home)}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Two small samples and a database at the schema's head (so no command migrates it)."""
    folder = tmp_path_factory.mktemp("cli-imports")
    rng = np.random.default_rng(0)
    for name, shift in (("a", 0.0), ("b", 0.5)):
        pd.DataFrame({
            "x": rng.normal(shift, 1.0, 400),
            "c": pd.Categorical(rng.choice(["u", "v", "w"], 400)),
            "date": pd.date_range("2020-01-01", periods=400, freq="D"),
        }).to_parquet(folder / f"{name}.parquet")  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "mlfactory", "db", "upgrade"],
        cwd=folder,
        env=_env(folder / "home"),
        check=True,
        capture_output=True,
    )
    return folder


@pytest.mark.parametrize(("args", "allowed"), COMMANDS, ids=[" ".join(a[:2]) for a, _ in COMMANDS])
def test_a_command_imports_only_what_its_work_needs(args, allowed, workdir) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(sorted(HEAVY))],
        cwd=workdir,
        env=_env(workdir / "home"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: drift found (monitor)
    loaded = set(json.loads(done.stderr.split("LOADED ", 1)[1]))
    assert loaded <= allowed, f"`mlfactory {' '.join(args)}` imported {sorted(loaded - allowed)}"
