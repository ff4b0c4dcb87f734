"""Stock MLflow loads what mlfactory trains, where only the model's requirements.txt is installed.

One fresh virtualenv for the module (``python -m venv`` + ``pip install -r requirements.txt``,
from PyPI through pip's cache; mlfactory is not installed there). It is built on a thread: the
virtualenv at once, the first model's requirements.txt as soon as that model is trained, while the
others train; their requirements.txt files are installed on top once all have trained. In it,
``mlflow.pyfunc.load_model("models:/<name>@champion")`` against the same tracking database scores
the same rows as ``mlfactory serve`` (a real uvicorn server) does, for every recipe and every
installed model family of the zoo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from mlfactory.datasets import load_dataset, write_synthetic
from mlfactory.models import list_models
from mlfactory.preprocessing import list_recipes
from mlfactory.registry import promote
from mlfactory.serving import BackgroundServer, create_app
from mlfactory.settings import Settings, load_settings
from mlfactory.tracking import open_tracking, tracking_uri
from mlfactory.training import train

pytestmark = pytest.mark.slow

RECIPES = list(list_recipes())
OTHER_RECIPES = [recipe for recipe in RECIPES if recipe != "power"]
CLASSIFIERS = list_models("classification")
REGRESSION_ONLY = [m for m in list_models("regression") if m not in CLASSIFIERS]

SPEC = """
name = "{name}"
dataset = {dataset}
task = "{task}"
preprocessing = {recipes}
model = {models}
seed = 0
[cv]
folds = 2
scoring = ["{scoring}"]
[search]
kind = "none"
"""

SCORE = """
import json, sys
import mlflow
import pandas as pd

jobs = json.load(open(sys.argv[1]))
out = {}
for name, payload in jobs.items():
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    split = payload["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    out[name] = pd.Series(model.predict(frame)).tolist()
json.dump(out, open(sys.argv[2], "w"))
"""


def _spec(folder, name, dataset, task, recipes: list[str], models: list[str], scoring: str):
    path = folder / f"{name}.toml"
    path.write_text(
        SPEC.format(
            name=name,
            dataset=dataset,
            task=task,
            recipes=json.dumps(recipes),
            models=json.dumps(models),
            scoring=scoring,
        )
    )
    return path


def _mixed_csv(path: Path, rows: int = 300) -> None:
    """Regression data with an integer, a double with gaps, a string and a nullable boolean."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "count": rng.integers(0, 40, rows),
            "amount": rng.lognormal(1.0, 1.0, rows),
            "city": rng.choice(["north", "south", "east"], rows),
            "member": np.where(rng.random(rows) < 0.4, "true", "false"),
        }
    )
    frame["target"] = (
        0.5 * frame["count"] + 2 * frame["amount"] + 5 * (frame["member"] == "true")
    ) + rng.normal(size=rows)
    frame.loc[::9, "amount"] = np.nan
    frame.loc[::11, "member"] = ""
    frame.to_csv(path, index=False)


def _payload(frame: pd.DataFrame) -> dict:
    """MLflow's ``dataframe_split``, as MLflow's own client sends a frame."""
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def _names(kind: str, recipe: str, model: str) -> str:
    if (kind, recipe, model) == ("credit", "power", "LogisticRegression"):
        return "credit"
    return f"{kind}-{recipe}-{model}".lower().replace("_", "-")


def _clean_environment() -> dict[str, str]:
    """This process's environment without anything that would point Python at mlfactory."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFACTORY_", "PYTHON", "VIRTUAL_ENV"))
    }


def _pip_install(python: Path, requirements: Path, environment: dict[str, str]) -> None:
    """``pip install -r``; no bytecode for every file of every package (half of pip's CPU time):
    Python compiles the modules the scoring imports, once."""
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-compile", "-r", str(requirements)],
        check=True,
        timeout=1500,
        env=environment,
    )  # fmt: skip


class CleanVenv:
    """``python -m venv`` at once, then the first requirements.txt handed over installed in it, on
    a thread of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.python = folder / "venv" / "bin" / "python"
        self._requirements: Path | None = None
        self._handed = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._build, daemon=True)
        self._thread.start()

    def install_first(self, requirements: str) -> None:
        assert self._requirements is None
        self._requirements = self.folder / "requirements-first.txt"
        self._requirements.write_text(requirements)
        self._handed.set()

    def _build(self) -> None:
        try:
            environment = _clean_environment()
            venv = self.folder / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=environment)
            self._handed.wait()
            if self._requirements is not None:
                _pip_install(self.python, self._requirements, environment)
        except BaseException as error:  # raised again by wait()
            self._error = error

    def wait(self) -> Path:
        assert self._requirements is not None, "no requirements.txt was handed over"
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.python

    def close(self) -> None:
        """No thread or pip outlives the module, also when nothing was handed over."""
        self._handed.set()
        self._thread.join()


class Trained:
    def __init__(self, settings: Settings, payloads: dict[str, dict]) -> None:
        self.settings = settings
        self.payloads = payloads  # registered name -> rows to score


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleanVenv]:
    venv = CleanVenv(tmp_path_factory.mktemp("venv"))
    yield venv
    venv.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, clean_venv: CleanVenv) -> Trained:
    folder = tmp_path_factory.mktemp("stock")
    settings = load_settings(home=folder / ".mlfactory")
    write_synthetic("credit", 500, settings=settings)
    _mixed_csv(folder / "mixed.csv")
    credit_rows = load_dataset("credit", settings=settings).X.sample(40, random_state=1)
    mixed_rows = pd.read_csv(folder / "mixed.csv").drop(columns="target").head(40)
    mixed_rows["member"] = mixed_rows["member"].map({"true": True, "false": False})
    payloads: dict[str, dict] = {}
    credit = '"credit"'
    mixed = f'{{ path = "{(folder / "mixed.csv").as_posix()}", target = "target" }}'
    others = [m for m in CLASSIFIERS if m != "LogisticRegression"]
    jobs = [  # every recipe with one model, every other family with one recipe
        ("credit", credit, "classification", ["power"], ["LogisticRegression"], credit_rows),
        ("credit", credit, "classification", OTHER_RECIPES, ["LogisticRegression"], credit_rows),
        ("credit", credit, "classification", ["power"], others, credit_rows),
        ("mixed", mixed, "regression", RECIPES, REGRESSION_ONLY[:1], mixed_rows),
        ("mixed", mixed, "regression", ["basic"], REGRESSION_ONLY[1:], mixed_rows),
    ]
    for number, (kind, dataset, task, recipes, models, rows) in enumerate(jobs):
        if not models:
            continue
        scoring = "roc_auc" if task == "classification" else "r2"
        spec = _spec(folder, f"stock-{number}", dataset, task, recipes, models, scoring)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # convergence of tiny fits
            result = train(spec, settings)
        for cell in result.cells:
            recipe, model = cell.name.split("+")
            name = _names(kind, recipe, model)
            promote(settings, name, run_id=cell.run_id)
            payloads[name] = _payload(rows)
        if number == 0:  # one model first: the virtualenv's pip runs while the others train
            open_tracking(settings)
            first = Path(mlflow.pyfunc.get_model_dependencies("models:/credit@champion"))
            clean_venv.install_first(first.read_text())
    covered = {name.split("-")[-1] for name in payloads} | {"logisticregression"}
    assert covered >= {m.lower() for m in CLASSIFIERS + REGRESSION_ONLY}
    assert len(payloads) == 2 * len(RECIPES) + len(CLASSIFIERS) + len(REGRESSION_ONLY) - 2
    return Trained(settings, payloads)


@pytest.fixture(scope="module")
def clean_python(trained: Trained, clean_venv: CleanVenv) -> Path:
    """A fresh virtualenv with only the models' requirements.txt installed (no mlfactory)."""
    open_tracking(trained.settings)
    files = {
        Path(mlflow.pyfunc.get_model_dependencies(f"models:/{name}@champion")).read_text()
        for name in trained.payloads
    }
    python = clean_venv.wait()  # the first model's requirements.txt installed meanwhile
    folder = clean_venv.folder
    environment = _clean_environment()
    assert "mlfactory" not in (folder / "requirements-first.txt").read_text()
    for number, text in enumerate(sorted(files)):
        assert "mlfactory" not in text
        requirements = folder / f"requirements-{number}.txt"
        requirements.write_text(text)
        _pip_install(python, requirements, environment)
    check = subprocess.run(
        [str(python), "-c", "import mlfactory"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        cwd=folder,
    )
    assert check.returncode != 0 and "No module named 'mlfactory'" in check.stderr
    return python


def test_requirements_pin_every_library_and_never_mlfactory(trained: Trained):
    open_tracking(trained.settings)
    text = Path(mlflow.pyfunc.get_model_dependencies("models:/credit@champion")).read_text()
    pins = dict(line.split("==", 1) for line in text.split() if "==" in line)
    for name in ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas"):
        assert name in pins, text
    assert "mlfactory" not in text


def test_stock_mlflow_in_a_clean_venv_scores_as_mlfactory_serve(
    trained: Trained, clean_python: Path, tmp_path: Path
):
    jobs, answers = tmp_path / "jobs.json", tmp_path / "answers.json"
    jobs.write_text(json.dumps(trained.payloads))
    environment = _clean_environment()
    environment["MLFLOW_TRACKING_URI"] = tracking_uri(trained.settings)
    environment["MLFLOW_REGISTRY_URI"] = tracking_uri(trained.settings)
    run = subprocess.run(
        [str(clean_python), "-c", SCORE, str(jobs), str(answers)],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    stock = json.loads(answers.read_text())
    assert set(stock) == set(trained.payloads)
    for name, payload in trained.payloads.items():
        app = create_app(trained.settings, name, log_predictions=False, onnx=True)  # serve's way
        with BackgroundServer(app) as server:
            response = httpx.post(f"{server.url}/invocations", json=payload, timeout=60)
        assert response.status_code == 200, (name, response.text)
        served = response.json()["predictions"]
        assert len(served) == len(stock[name]) == len(payload["dataframe_split"]["data"])
        if name.startswith("credit"):  # class labels: exactly the same
            assert served == stock[name], name
        else:  # values: ONNX (double) within its verified 1e-6 of scikit-learn
            np.testing.assert_allclose(served, stock[name], rtol=1e-6, atol=1e-6, err_msg=name)
