"""Sacred-style ``key=value`` overrides."""

from __future__ import annotations

import pytest

from mlfactory.exceptions import SpecError
from mlfactory.spec import apply_overrides, load_spec, parse_override_value

BASE = 'name = "o"\ndataset = "breast_cancer"\nmodel = "LogisticRegression"\n[cv]\nfolds = 5\n'


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(BASE)
    return path


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("0.5", 0.5),
        ("true", True),
        ('["roc_auc", "f1"]', ["roc_auc", "f1"]),
        ("RandomForest", "RandomForest"),
        ('"quoted"', "quoted"),
        ("{ path = 'x.csv', target = 'y' }", {"path": "x.csv", "target": "y"}),
        ("grids/x.json", "grids/x.json"),
    ],
)
def test_values_are_toml_literals_when_they_parse(text, value):
    assert parse_override_value(text) == value


def test_overrides_apply_to_the_file(spec_file):
    spec = load_spec(
        spec_file,
        [
            "model=RandomForest",
            "cv.folds=10",
            "search.kind=none",
            'cv.scoring=["roc_auc"]',
            "seed=7",
            'preprocessing=["basic", "power"]',
        ],
    )
    assert spec.model == "RandomForest"
    assert spec.cv.folds == 10
    assert spec.search.kind == "none"
    assert spec.cv.scoring == ["roc_auc"]
    assert spec.seed == 7
    assert spec.cells() == [("basic", "RandomForest"), ("power", "RandomForest")]


def test_later_overrides_win_and_input_is_not_mutated():
    data = {"name": "x", "cv": {"folds": 5}}
    out = apply_overrides(data, ["cv.folds=3", "cv.folds=4", "search.n_iter=2"])
    assert out["cv"]["folds"] == 4
    assert out["search"] == {"n_iter": 2}
    assert data == {"name": "x", "cv": {"folds": 5}}


@pytest.mark.parametrize("item", ["model", "=3", "cv..folds=3", ".x=1"])
def test_malformed_overrides(item):
    with pytest.raises(SpecError, match="expected key=value"):
        apply_overrides({}, [item])


def test_override_into_a_scalar_is_an_error():
    with pytest.raises(SpecError, match=r"'dataset' is 'credit', not a table"):
        apply_overrides({"dataset": "credit"}, ["dataset.target=y"])


def test_overridden_values_are_validated(spec_file):
    with pytest.raises(SpecError, match=r"field 'cv.folds'.*greater than or equal to 2"):
        load_spec(spec_file, ["cv.folds=1"])
    with pytest.raises(SpecError, match=r"unknown key 'cv.fold'"):
        load_spec(spec_file, ["cv.fold=3"])
