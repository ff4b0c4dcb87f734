"""Loading specs: defaults, matrices, relative grid paths, JSON-serialisable resolution."""

from __future__ import annotations

import json
from pathlib import Path

from mlfactory.datasets._base import Task
from mlfactory.models import grids_dir
from mlfactory.spec import DEFAULT_SCORING, ExperimentSpec, load_spec, spec_from_dict
from mlfactory.spec._load import grid_for, space_for

MINIMAL = 'name = "m"\ndataset = "breast_cancer"\nmodel = "LogisticRegression"\n'


def write(folder: Path, text: str, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_spec_gets_every_default(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL))
    assert isinstance(spec, ExperimentSpec)
    assert spec.preprocessing == "basic"
    assert (spec.seed, spec.test_size) == (42, 0.2)
    assert (spec.cv.folds, spec.cv.kind, spec.cv.scoring) == (5, "auto", None)
    assert (spec.search.kind, spec.search.param_grid, spec.search.refit) == ("grid", None, None)
    assert spec.search.n_iter == 20
    assert spec.source == (tmp_path / "spec.toml").resolve()
    assert spec.cells() == [("basic", "LogisticRegression")]
    assert not spec.is_matrix


def test_full_spec_from_the_issue(tmp_path):
    text = """
name = "credit-logreg"
dataset = "credit"
preprocessing = "power"
model = "LogisticRegression"
seed = 42
test_size = 0.2
[cv]
folds = 5
scoring = ["neg_log_loss", "roc_auc", "f1", "accuracy", "precision", "recall"]
[search]
kind = "grid"
param_grid = "grids/logistic_regression.json"
refit = "neg_log_loss"
n_iter = 20
"""
    spec = load_spec(write(tmp_path, text))
    assert spec.cv.scoring == list(DEFAULT_SCORING[Task.CLASSIFICATION])
    grid, origin = grid_for(spec, "LogisticRegression", Task.CLASSIFICATION)
    assert Path(origin) == grids_dir() / "logistic_regression.json"
    assert grid == json.loads((grids_dir() / "logistic_regression.json").read_text())


def test_matrix_cells_are_the_product(tmp_path):
    text = MINIMAL.replace('"LogisticRegression"', '["LogisticRegression", "KNN"]')
    spec = load_spec(write(tmp_path, text + 'preprocessing = ["basic", "power"]\n'))
    assert spec.cells() == [
        ("basic", "LogisticRegression"),
        ("basic", "KNN"),
        ("power", "LogisticRegression"),
        ("power", "KNN"),
    ]
    assert spec.is_matrix


def test_grid_file_next_to_the_spec_wins(tmp_path):
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / "logistic_regression.json").write_text('{"clf__C": [7.0]}')
    spec = load_spec(
        write(tmp_path, MINIMAL + '[search]\nparam_grid = "grids/logistic_regression.json"\n')
    )
    assert grid_for(spec, "LogisticRegression", Task.CLASSIFICATION)[0] == {"clf__C": [7.0]}


def test_inline_grid_and_inline_space(tmp_path):
    text = MINIMAL + (
        '[search]\nkind = "optuna"\nparam_grid = { clf__C = [1.0, 2.0] }\n'
        '[search.distributions]\nclf__C = { type = "float", low = 0.5, high = 2.0 }\n'
    )
    spec = load_spec(write(tmp_path, text))
    assert grid_for(spec, "LogisticRegression", Task.CLASSIFICATION) == (
        {"clf__C": [1.0, 2.0]},
        "inline",
    )
    space, origin = space_for(spec, "LogisticRegression", Task.CLASSIFICATION)
    assert origin == "inline" and space["clf__C"]["high"] == 2.0


def test_inline_user_table_dataset(tmp_path):
    text = 'name = "u"\nmodel = "Ridge"\ndataset = { path = "data.csv", target = "y" }\n'
    spec = load_spec(write(tmp_path, text))
    assert spec.dataset == {"path": "data.csv", "target": "y"}


def test_spec_from_dict_without_a_file():
    spec = spec_from_dict({"name": "d", "dataset": "diabetes", "model": "Ridge"})
    assert spec.source is None
    assert spec.models == ["Ridge"]


def test_resolved_spec_is_json_serialisable(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL + "[cv]\nfolds = 3\n"))
    resolved = spec.resolve()
    assert resolved.task == Task.CLASSIFICATION
    assert resolved.scoring == list(DEFAULT_SCORING[Task.CLASSIFICATION])
    assert resolved.refit == "neg_log_loss"  # the first metric
    scorers = resolved.scorers()
    assert list(scorers) == resolved.scoring
    accuracy = scorers["accuracy"](
        resolved.cells[0].pipeline.fit(resolved.X_train, resolved.y_train),
        resolved.X_test,
        resolved.y_test,
    )
    assert accuracy > 0.9  # breast cancer is easy for a logistic regression
    data = json.loads(json.dumps(resolved.to_dict()))
    assert data["split"]["n_train"] + data["split"]["n_test"] == 569
    assert data["split"]["method"] == "stratified"
    assert data["dataset"]["name"] == "breast_cancer"
    assert data["cells"][0]["param_grid"] == json.loads(
        (grids_dir() / "logistic_regression.json").read_text()
    )
    assert data["spec"]["cv"]["folds"] == 3
