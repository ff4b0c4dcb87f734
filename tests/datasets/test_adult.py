"""Adult: UCI text format (comma + space, ``?``, test file quirks) through the real loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlfactory.datasets import Task, load_adult, load_dataset, synth_adult, write_synthetic
from mlfactory.datasets._adult import ADULT_COLUMNS
from mlfactory.exceptions import DataError

ROW = (
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K"
)
ROW_MISSING = (
    "54, ?, 180211, Some-college, 10, Married-civ-spouse, ?, Husband, Asian-Pac-Islander, "
    "Male, 0, 0, 60, ?, >50K"
)


def test_written_files_have_the_uci_format() -> None:
    data_file, test_file = write_synthetic("adult", 400, seed=2)
    assert data_file.parent.parts[-3:] == ("data", "raw", "adult")
    lines = data_file.read_text().splitlines()
    assert len([line for line in lines if line]) == 400
    fields = lines[0].split(", ")
    assert len(fields) == 15 and fields[-1] in {"<=50K", ">50K"}
    test_lines = test_file.read_text().splitlines()
    assert test_lines[0] == "|1x3 Cross validator"
    assert len([line for line in test_lines[1:] if line]) == 200
    assert all(line.endswith(("<=50K.", ">50K.")) for line in test_lines[1:] if line)
    assert any(", ?, " in line for line in lines)


def test_loader_on_hand_written_rows(tmp_path: Path) -> None:
    (tmp_path / "adult.data").write_text(ROW + "\n" + ROW_MISSING + "\n\n")
    data = load_adult(tmp_path)
    assert data.task is Task.CLASSIFICATION
    assert list(data.X.columns) == list(ADULT_COLUMNS)
    assert data.y.tolist() == [0, 1]
    assert data.X.loc[0, "workclass"] == "State-gov"
    assert data.X.loc[0, "capital_gain"] == 2174
    assert pd.isna(data.X.loc[1, "workclass"]) and pd.isna(data.X.loc[1, "occupation"])
    assert pd.isna(data.X.loc[1, "native_country"])
    assert set(data.roles.numeric) == {
        "age",
        "fnlwgt",
        "education_num",
        "capital_gain",
        "capital_loss",
        "hours_per_week",
    }
    assert "workclass" in data.roles.categorical and "sex" in data.roles.categorical
    assert set(data.roles.all) == set(data.X.columns)


def test_include_test_reads_the_test_file_quirks(tmp_path: Path) -> None:
    (tmp_path / "adult.data").write_text(ROW + "\n")
    (tmp_path / "adult.test").write_text(
        "|1x3 Cross validator\n" + ROW.replace("<=50K", ">50K.") + "\n\n"
    )
    data = load_adult(tmp_path, include_test=True)
    assert data.y.tolist() == [0, 1]
    assert len(load_dataset("adult", path=tmp_path).X) == 1


def test_synthetic_income_is_learnable_and_near_the_real_rate() -> None:
    write_synthetic("adult", 4000, seed=0)
    data = load_dataset("adult")
    assert 0.18 <= data.y.mean() <= 0.30
    assert 0.03 <= data.X["workclass"].isna().mean() <= 0.08
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.3, random_state=0, stratify=data.y
    )
    model = make_pipeline(
        make_column_transformer(
            (StandardScaler(), list(data.roles.numeric)),
            (
                OneHotEncoder(handle_unknown="ignore"),
                list(data.roles.categorical),
            ),
        ),
        LogisticRegression(max_iter=2000),
    )
    model.fit(X_train.fillna({c: "missing" for c in data.roles.categorical}), y_train)
    scores = model.predict_proba(X_test.fillna({c: "missing" for c in data.roles.categorical}))
    assert roc_auc_score(y_test, scores[:, 1]) > 0.8


def test_education_num_matches_education() -> None:
    frame = synth_adult(500, 1)
    pairs = frame.groupby("education")["education_num"].nunique()
    assert (pairs == 1).all()
    assert frame.loc[frame["education"] == "Bachelors", "education_num"].iloc[0] == 13
    assert np.all(frame.loc[frame["workclass"] == "?", "occupation"] == "?")


def test_absent_folder_explains(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"adult\.data.*mlfactory data synth adult"):
        load_adult(tmp_path / "nowhere")


def test_bad_labels_and_short_rows_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "adult.data").write_text(ROW.replace("<=50K", "rich") + "\n")
    with pytest.raises(DataError, match="rich"):
        load_adult(tmp_path)
    (tmp_path / "adult.data").write_text("39, State-gov, 77516\n")
    with pytest.raises(DataError, match="15 comma-separated fields"):
        load_adult(tmp_path)
