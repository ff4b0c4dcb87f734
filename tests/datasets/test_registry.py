"""Registry: names, options, errors that list valid values, and the bundled datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer as sk_breast_cancer
from sklearn.datasets import load_diabetes as sk_diabetes

from mlfactory.datasets import (
    DATASETS,
    SYNTHETIC,
    SyntheticName,
    Task,
    list_datasets,
    load_dataset,
    write_synthetic,
)
from mlfactory.exceptions import SpecError


def test_list_datasets_names_every_loader() -> None:
    assert list_datasets() == ["adult", "breast_cancer", "credit", "diabetes", "fires", "stocks"]
    assert all(DATASETS[name].description for name in list_datasets())
    assert set(SYNTHETIC) == set(SyntheticName)
    assert {n.value for n in SyntheticName} <= set(list_datasets())


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(SpecError) as info:
        load_dataset("credits")
    message = str(info.value)
    assert "'credits'" in message
    assert all(name in message for name in list_datasets())


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(SpecError, match=r"no option\(s\) rows; valid options: path"):
        load_dataset("credit", rows=5)
    assert DATASETS["adult"].options == ("path", "include_test")


def test_breast_cancer_matches_scikit_learn() -> None:
    data = load_dataset("breast_cancer")
    reference = sk_breast_cancer()
    assert data.task is Task.CLASSIFICATION
    assert data.X.shape == reference.data.shape == (569, 30)
    assert data.y.tolist() == reference.target.tolist()
    assert "mean_radius" in data.X.columns and data.roles.numeric == tuple(data.X.columns)
    assert data.X["mean_radius"].tolist() == reference.data[:, 0].tolist()


def test_diabetes_matches_scikit_learn_unscaled() -> None:
    data = load_dataset("diabetes")
    reference = sk_diabetes(scaled=False)
    assert data.task is Task.REGRESSION
    assert data.X.shape == (442, 10)
    assert data.y.tolist() == reference.target.tolist()
    assert data.X["age"].tolist() == reference.data[:, 0].tolist()


def test_write_synthetic_validates_name_rows_and_out(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="credit, adult, fires"):
        write_synthetic("stocks", 10)
    with pytest.raises(SpecError, match="positive integer"):
        write_synthetic("credit", 0)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SpecError, match="folder"):
        write_synthetic("adult", 10, tmp_path / "afile")
    # a folder out gets the loader's file name; nothing else is left behind
    (path,) = write_synthetic("fires", 20, tmp_path)
    assert path == tmp_path / "forestfires.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "forestfires.csv"]
