"""Credit: the synthetic Kaggle file round-trips through the real loader with the known signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mlfactory.datasets import (
    CREDIT_TRUE_COEFFICIENTS,
    Task,
    load_credit,
    load_dataset,
    synth_credit,
    write_synthetic,
)
from mlfactory.datasets._credit import CREDIT_COLUMNS, credit_true_logit
from mlfactory.exceptions import DataError

KAGGLE_HEADER = (
    ",SeriousDlqin2yrs,RevolvingUtilizationOfUnsecuredLines,age,"
    "NumberOfTime30-59DaysPastDueNotWorse,DebtRatio,MonthlyIncome,"
    "NumberOfOpenCreditLinesAndLoans,NumberOfTimes90DaysLate,NumberRealEstateLoansOrLines,"
    "NumberOfTime60-89DaysPastDueNotWorse,NumberOfDependents"
)


@pytest.fixture(scope="module")
def big_credit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("credit") / "cs-training.csv"
    write_synthetic("credit", 20_000, path, seed=7)
    return path


def test_written_file_has_the_kaggle_layout(big_credit: Path) -> None:
    lines = big_credit.read_text().splitlines()
    assert lines[0] == KAGGLE_HEADER
    assert lines[1].startswith("1,")
    assert lines[-1].startswith("20000,")
    assert any(",NA," in line or line.endswith(",NA") for line in lines[1:200])
    raw = pd.read_csv(big_credit)
    # integer counts, income written without a decimal point
    assert raw["NumberOfTimes90DaysLate"].dtype.kind == "i"
    assert all("." not in line.split(",")[6] for line in lines[1:200])


def test_synthetic_distributions_match_the_brief(big_credit: Path) -> None:
    raw = pd.read_csv(big_credit)
    assert 0.05 <= raw["SeriousDlqin2yrs"].mean() <= 0.085
    assert 0.17 <= raw["MonthlyIncome"].isna().mean() <= 0.23
    assert 0.018 <= raw["NumberOfDependents"].isna().mean() <= 0.034
    util = raw["RevolvingUtilizationOfUnsecuredLines"]
    assert (util <= 1).mean() > 0.9 and util.max() > 100
    assert (raw["DebtRatio"] > 1).mean() > 0.1
    late = raw["NumberOfTime30-59DaysPastDueNotWorse"]
    assert (late == 0).mean() > 0.7
    assert late.isin([96, 98]).sum() > 0
    assert raw["age"].between(21, 103).all()


def test_labels_follow_the_documented_logistic_model(big_credit: Path) -> None:
    raw = pd.read_csv(big_credit)
    # The true logit ranks the labels well, and the observed rate matches the model's mean rate.
    logit = credit_true_logit(raw)
    assert roc_auc_score(raw["SeriousDlqin2yrs"], logit) > 0.8
    expected_rate = (1 / (1 + np.exp(-logit))).mean()
    assert abs(raw["SeriousDlqin2yrs"].mean() - expected_rate) < 0.01
    assert CREDIT_TRUE_COEFFICIENTS["utilization"] > 0 > CREDIT_TRUE_COEFFICIENTS["age_minus_50"]


def test_loader_renames_flags_and_roles(big_credit: Path) -> None:
    data = load_credit(big_credit)
    assert data.task is Task.CLASSIFICATION
    assert set(data.y.unique().tolist()) == {0, 1}
    expected = [v for v in CREDIT_COLUMNS.values() if v != "delinquency"]
    assert list(data.X.columns[: len(expected)]) == expected
    assert set(data.roles.boolean) == {
        "high_debt_ratio",
        "missing_monthly_income",
        "missing_num_dependents",
    }
    assert set(data.roles.skewed) == {
        "revolving_unsecured_line_utilization",
        "debt_ratio",
        "monthly_income",
    }
    assert set(data.roles.all) == set(data.X.columns)
    assert (data.X["missing_monthly_income"] == data.X["monthly_income"].isna()).all()
    assert (data.X["high_debt_ratio"] == (data.X["debt_ratio"] > 1)).all()


def test_logistic_regression_learns_the_signal(big_credit: Path) -> None:
    data = load_credit(big_credit)
    X_train, X_test, y_train, y_test = train_test_split(
        data.X.astype(float), data.y, test_size=0.25, random_state=0, stratify=data.y
    )
    model = make_pipeline(
        SimpleImputer(strategy="median"),
        FunctionTransformer(lambda a: np.log1p(np.clip(a, 0, None))),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )
    model.fit(X_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    assert auc > 0.75


def test_loader_on_a_hand_written_file(tmp_path: Path) -> None:
    path = tmp_path / "cs.csv"
    path.write_text(
        KAGGLE_HEADER + "\n1,1,0.5,45,2,1.5,NA,13,0,6,0,2\n2,0,0.1,40,0,0.2,3000,4,0,0,0,NA\n"
    )
    data = load_credit(path)
    assert data.y.tolist() == [1, 0]
    assert data.X["high_debt_ratio"].tolist() == [True, False]
    assert data.X["missing_monthly_income"].tolist() == [True, False]
    assert data.X["missing_num_dependents"].tolist() == [False, True]
    assert data.X.loc[1, "monthly_income"] == 3000.0
    assert data.X.loc[0, "num_30_59_days_late"] == 2.0


def test_default_path_is_used_by_load_dataset() -> None:
    written = write_synthetic("credit", 300, seed=1)
    assert written[0].name == "cs-training.csv"
    assert written[0].parent.parts[-3:] == ("data", "raw", "credit")
    data = load_dataset("credit")
    assert len(data.X) == 300 and data.source == str(written[0])


def test_absent_file_says_where_and_how() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("credit")
    message = str(info.value)
    assert "cs-training.csv" in message and "GiveMeSomeCredit" in message
    assert str(Path("data") / "raw" / "credit") in message
    assert "mlfactory data synth credit --rows" in message


def test_missing_columns_are_named(tmp_path: Path) -> None:
    frame = synth_credit(50, 0).drop(columns=["DebtRatio", "age"])
    path = tmp_path / "broken.csv"
    frame.to_csv(path)
    with pytest.raises(DataError) as info:
        load_credit(path)
    message = str(info.value)
    assert str(path) in message and "DebtRatio" in message and "age" in message
    assert "MonthlyIncome" not in message.split("found:")[0]


def test_target_outside_zero_one_is_rejected(tmp_path: Path) -> None:
    frame = synth_credit(20, 0)
    frame.iloc[0, 0] = 2
    path = tmp_path / "bad.csv"
    frame.to_csv(path)
    with pytest.raises(DataError, match="SeriousDlqin2yrs"):
        load_credit(path)


def test_text_in_a_numeric_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cs.csv"
    path.write_text(KAGGLE_HEADER + "\n1,0,0.5,forty,0,0.2,3000,4,0,0,0,1\n")
    with pytest.raises(DataError, match="column age must be numeric"):
        load_credit(path)


def test_same_seed_same_data_different_seed_different_data() -> None:
    pd.testing.assert_frame_equal(synth_credit(200, 3), synth_credit(200, 3))
    assert not synth_credit(200, 3).equals(synth_credit(200, 4))
