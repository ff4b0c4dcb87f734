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
    "sqlalchemy", "psycopg", "alembic", "pydantic", "pydantic_settings", "polars",
})  # fmt: skip

# every command that runs reads its settings: with python-dotenv and tomllib, nothing heavy
SETTINGS: frozenset[str] = frozenset()
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
     FRAMES | {"sklearn", "scipy", "pydantic"}),
    (["data", "status"], FRAMES),
    # nothing new to fetch (the fixture ingested the ticker): no pandas, no pydantic (#21)
    (["data", "ingest", "--tickers", "tickers.csv"], SETTINGS),
    # the zoo and its grid files: Task without mlfactory.datasets' loaders, scikit-learn only
    # when a model is built
    (["spec", "models"], SETTINGS),
    # MLflow's expected schema comes from a snapshot of the installed MLflow (resources/)
    (["info"], DATABASE),
    (["runs", "list"], DATABASE),  # an empty store: found so without MLflow
    (["models", "list"], DATABASE),  # an empty registry: mlfactory.registry loads lazily
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
    (folder / "tickers.csv").write_text("ticker,sector,subsector\nAAA,Energy,Oil\n")
    subprocess.run(
        [sys.executable, "-m", "mlfactory", "data", "ingest", "--tickers", "tickers.csv"],
        cwd=folder,
        env=_env(folder / "home"),
        check=True,
        capture_output=True,
    )
    return folder


_POPULATE = """
import sys
from mlfactory.settings import get_settings
from mlfactory.tracking import experiment_for, open_tracking
settings = get_settings()
client = open_tracking(settings)
experiment = experiment_for(client, "credit", settings)
ids = []
for index in range(2):
    run = client.create_run(experiment, run_name=f"run-{index}").info.run_id
    client.log_param(run, "C", str(index))
    client.log_metric(run, "test_roc_auc", 0.5 + index / 10)
    client.set_terminated(run)
    ids.append(run)
client.create_registered_model("credit-model")
client.create_model_version("credit-model", f"runs:/{ids[0]}/model", ids[0], tags={"spec": "x"})
client.set_registered_model_alias("credit-model", "champion", "1")
print(" ".join(ids))
"""

# on a store with runs and a registered model: MLflow's tables read with SQL, no MLflow (#21)
READERS = [
    ["runs", "list"],
    ["runs", "list", "--all", "--json"],
    ["runs", "show", "{run0}"],
    ["runs", "compare", "{run0}", "{run1}"],
    ["models", "list"],
    ["models", "show", "credit-model"],
    ["models", "decisions", "credit-model"],
]


@pytest.fixture(scope="module")
def store_with_runs(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A tracking store with two runs and a registered model with an alias (written by MLflow)."""
    folder = tmp_path_factory.mktemp("cli-imports-runs")
    done = subprocess.run(
        [sys.executable, "-c", _POPULATE],
        cwd=folder,
        env=_env(folder / "home"),
        check=True,
        capture_output=True,
        text=True,
    )
    run0, run1 = done.stdout.split()[-2:]
    return folder, {"run0": run0, "run1": run1}


@pytest.mark.parametrize("args", READERS, ids=[" ".join(a[:3]) for a in READERS])
def test_a_reader_on_a_store_with_runs_imports_no_mlflow(args, store_with_runs) -> None:
    folder, ids = store_with_runs
    args = [a.format(**ids) for a in args]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(sorted(HEAVY))],
        cwd=folder,
        env=_env(folder / "home"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ids["run0"][:8] in done.stdout or "credit" in done.stdout, done.stdout  # real answers
    loaded = set(json.loads(done.stderr.split("LOADED ", 1)[1]))
    assert loaded <= DATABASE, f"`mlfactory {' '.join(args)}` imported {sorted(loaded - DATABASE)}"


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


_LIBRARY_PROBE = """
import json, sys
from mlfactory.registry import list_models
from mlfactory.settings import get_settings
assert list_models(get_settings()) == []
heavy = set(json.loads(sys.argv[1]))
print("LOADED " + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
"""


def test_the_registry_lists_an_empty_store_without_mlflow(workdir) -> None:
    """``mlfactory.registry`` loads its modules on first use and MLflow with the first client:
    an empty store's listing reads the database's state only (no MLflow, scikit-learn, pandas)."""
    done = subprocess.run(
        [sys.executable, "-c", _LIBRARY_PROBE, json.dumps(sorted(HEAVY))],
        cwd=workdir,
        env=_env(workdir / "home"),
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(done.stdout.split("LOADED ", 1)[1]))
    assert loaded <= DATABASE, sorted(loaded - DATABASE)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_spec_recipes_lists_every_recipe_without_scikit_learn_or_pandas(as_json, workdir) -> None:
    """The recipes' names and descriptions come from their builders' docstrings: the builders
    import scikit-learn and pandas when they build a recipe, not when they are listed."""
    from mlfactory.preprocessing import list_recipes

    args = ["spec", "recipes", *(["--json"] if as_json else [])]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(sorted(HEAVY))],
        cwd=workdir,
        env={**_env(workdir / "home"), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stderr.split("LOADED ", 1)[1]))
    assert loaded <= SETTINGS, f"`mlfactory {' '.join(args)}` imported {sorted(loaded - SETTINGS)}"
    if as_json:
        assert json.loads(done.stdout) == list_recipes()
    else:
        for name, description in list_recipes().items():
            assert f" {name} " in done.stdout and description in done.stdout, done.stdout
