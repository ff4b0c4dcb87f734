"""Kaggle "Give Me Some Credit" (``cs-training.csv``): loader and a synthetic file in its format.

The synthetic labels come from a KNOWN logistic model of the written features
(:data:`CREDIT_TRUE_COEFFICIENTS`), so a model trained on the loaded data has an answer to find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.datasets._io import atomic_write, read_csv_checked, require_columns, require_file
from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings

__all__ = [
    "CREDIT_COLUMNS",
    "CREDIT_TRUE_COEFFICIENTS",
    "credit_default_path",
    "credit_true_logit",
    "load_credit",
    "synth_credit",
    "write_credit",
]

logger = get_logger(__name__)

# Kaggle column -> mlfactory column, in the file's order (after the unnamed index column).
CREDIT_COLUMNS: dict[str, str] = {
    "SeriousDlqin2yrs": "delinquency",
    "RevolvingUtilizationOfUnsecuredLines": "revolving_unsecured_line_utilization",
    "age": "age",
    "NumberOfTime30-59DaysPastDueNotWorse": "num_30_59_days_late",
    "DebtRatio": "debt_ratio",
    "MonthlyIncome": "monthly_income",
    "NumberOfOpenCreditLinesAndLoans": "num_open_credit_loans",
    "NumberOfTimes90DaysLate": "num_90_days_late",
    "NumberRealEstateLoansOrLines": "num_real_estate_loans",
    "NumberOfTime60-89DaysPastDueNotWorse": "num_60_89_days_late",
    "NumberOfDependents": "num_dependents",
}
TARGET = "delinquency"
NUMERIC = tuple(v for v in CREDIT_COLUMNS.values() if v != TARGET)
SKEWED = ("revolving_unsecured_line_utilization", "debt_ratio", "monthly_income")
FLAGS = ("high_debt_ratio", "missing_monthly_income", "missing_num_dependents")
LATE_CAP = 6  # the 96/98 sentinel counts enter the true model as this many late payments

#: The logistic model the synthetic labels are drawn from:
#: ``logit P(delinquency=1) = intercept + sum(coef * term)`` with the terms
#: ``utilization = min(utilization, 1.5)``, ``late_* = min(count, 6)``, ``age_minus_50``,
#: ``high_debt_ratio`` (0/1), ``log_income_over_5000`` (0 when income is missing),
#: ``missing_monthly_income`` (0/1) and ``num_dependents`` (0 when missing).
CREDIT_TRUE_COEFFICIENTS: dict[str, float] = {
    "intercept": -4.7,
    "utilization": 3.0,
    "late_30_59": 0.8,
    "late_90": 1.1,
    "late_60_89": 0.9,
    "age_minus_50": -0.03,
    "high_debt_ratio": 0.35,
    "log_income_over_5000": -0.12,
    "missing_monthly_income": 0.15,
    "num_dependents": 0.05,
}

HOW_TO_GET = (
    "Put the Kaggle competition 'GiveMeSomeCredit' file cs-training.csv there "
    "(kaggle competitions download -c GiveMeSomeCredit), pass path=..., "
    "or make a synthetic one with: mlfactory data synth credit --rows N"
)


def credit_default_path(settings: Settings) -> Path:
    """Where the loader looks for ``cs-training.csv`` by default."""
    return settings.data_dir / "raw" / "credit" / "cs-training.csv"


def credit_true_logit(frame: pd.DataFrame) -> np.ndarray:
    """The true log-odds of delinquency for Kaggle-named feature columns (see the coefficients)."""
    c = CREDIT_TRUE_COEFFICIENTS
    income = frame["MonthlyIncome"].astype(float)
    log_income = np.log(np.maximum(income.fillna(5000.0).to_numpy(), 1.0) / 5000.0)

    def late(column: str) -> np.ndarray:
        return np.minimum(frame[column].to_numpy(dtype=float), LATE_CAP)

    return (
        c["intercept"]
        + c["utilization"]
        * np.minimum(frame["RevolvingUtilizationOfUnsecuredLines"].to_numpy(float), 1.5)
        + c["late_30_59"] * late("NumberOfTime30-59DaysPastDueNotWorse")
        + c["late_90"] * late("NumberOfTimes90DaysLate")
        + c["late_60_89"] * late("NumberOfTime60-89DaysPastDueNotWorse")
        + c["age_minus_50"] * (frame["age"].to_numpy(float) - 50.0)
        + c["high_debt_ratio"] * (frame["DebtRatio"].to_numpy(float) > 1.0)
        + c["log_income_over_5000"] * log_income
        + c["missing_monthly_income"] * income.isna().to_numpy()
        + c["num_dependents"] * frame["NumberOfDependents"].astype(float).fillna(0.0).to_numpy()
    )


def synth_credit(rows: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic ``cs-training.csv`` as a DataFrame: Kaggle columns, 1-based unnamed index.

    Heavy-tailed utilisation and debt ratio, zero-inflated late-payment counts with a few 96/98
    sentinels, ~20% missing income, ~2.6% missing dependents, ~6-7% positives drawn from
    :data:`CREDIT_TRUE_COEFFICIENTS`.
    """
    if rows < 1:
        raise DataError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=rows)  # unobserved: correlates utilisation and late payments

    age = np.clip(np.round(rng.normal(52, 14.5, rows)), 21, 103).astype(int)
    utilization = 1.0 / (1.0 + np.exp(-rng.normal(-1.0 + 0.9 * risk, 1.3)))
    mild = rng.random(rows) < 0.02
    utilization[mild] = rng.uniform(1.0, 1.6, mild.sum())
    huge = rng.random(rows) < 0.0025
    utilization[huge] = rng.lognormal(np.log(2000.0), 1.5, huge.sum())

    def late_counts(base: float) -> np.ndarray:
        counts = rng.poisson(np.exp(base + 0.9 * risk))
        return np.where(rng.random(rows) < 0.3, 0, counts)

    late_30 = late_counts(-1.9)
    late_90 = late_counts(-2.8)
    late_60 = late_counts(-2.9)
    sentinel = rng.random(rows) < 0.002
    codes = rng.choice([96, 98], size=sentinel.sum(), p=[0.1, 0.9])
    for counts in (late_30, late_90, late_60):
        counts[sentinel] = codes

    income = np.round(rng.lognormal(np.log(5200.0) + 0.004 * (age - 50), 0.65)).astype(float)
    missing_income = rng.random(rows) < 0.198
    income[missing_income] = np.nan
    debt_ratio = rng.lognormal(np.log(0.3), 0.75, rows)
    # Kaggle quirk: without an income the "ratio" is the monthly debt itself.
    debt_ratio[missing_income] = rng.lognormal(np.log(1200.0), 1.2, missing_income.sum())
    open_lines = rng.negative_binomial(4, 4 / (4 + 8.5), rows)
    real_estate = rng.poisson(1.0, rows)
    dependents = rng.poisson(np.where(age < 60, 0.9, 0.3)).astype(float)
    dependents[rng.random(rows) < 0.026] = np.nan

    frame = pd.DataFrame(
        {
            "SeriousDlqin2yrs": np.zeros(rows, dtype=int),
            "RevolvingUtilizationOfUnsecuredLines": np.round(utilization, 9),
            "age": age,
            "NumberOfTime30-59DaysPastDueNotWorse": late_30,
            "DebtRatio": np.round(debt_ratio, 9),
            "MonthlyIncome": pd.array(income, dtype="Int64"),
            "NumberOfOpenCreditLinesAndLoans": open_lines,
            "NumberOfTimes90DaysLate": late_90,
            "NumberRealEstateLoansOrLines": real_estate,
            "NumberOfTime60-89DaysPastDueNotWorse": late_60,
            "NumberOfDependents": pd.array(dependents, dtype="Int64"),
        },
        index=pd.RangeIndex(1, rows + 1),
    )
    probability = 1.0 / (1.0 + np.exp(-credit_true_logit(frame)))
    frame["SeriousDlqin2yrs"] = (rng.random(rows) < probability).astype(int)
    return frame


def write_credit(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as Kaggle writes it: unnamed leading index column, ``NA`` for missing."""
    return atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=True, na_rep="NA"))


def load_credit(path: str | Path | None = None, *, settings: Settings | None = None) -> Dataset:
    """Load ``cs-training.csv`` with snake_case names, missing-value flags and column roles."""
    settings = settings or get_settings()
    file = Path(path) if path is not None else credit_default_path(settings)
    require_file(file, HOW_TO_GET)
    raw = read_csv_checked(file)
    unnamed = [c for c in raw.columns if str(c).startswith("Unnamed:") or str(c).strip() == ""]
    raw = raw.drop(columns=unnamed)
    require_columns(raw, list(CREDIT_COLUMNS), f"credit file {file}")
    frame = raw[list(CREDIT_COLUMNS)].rename(columns=CREDIT_COLUMNS)
    labels = set(frame[TARGET].dropna().unique().tolist())
    if frame[TARGET].isna().any() or not labels <= {0, 1}:
        raise DataError(
            f"credit file {file}: column SeriousDlqin2yrs must hold only 0 and 1, "
            f"found {sorted(labels, key=str)[:10]}"
            + (" and missing values" if frame[TARGET].isna().any() else "")
        )
    X = frame.drop(columns=[TARGET])
    for column in X.columns:
        values = pd.to_numeric(X[column], errors="coerce")
        if (values.isna() & X[column].notna()).any():
            raise DataError(f"credit file {file}: column {column} must be numeric (or NA)")
        X[column] = values.astype(float)
    X["high_debt_ratio"] = X["debt_ratio"] > 1.0
    X["missing_monthly_income"] = X["monthly_income"].isna()
    X["missing_num_dependents"] = X["num_dependents"].isna()
    X = X.reset_index(drop=True)
    y = frame[TARGET].astype(int).reset_index(drop=True).rename(TARGET)
    logger.info("loaded credit: %d rows from %s (%.1f%% positive)", len(X), file, 100 * y.mean())
    return Dataset(
        name="credit",
        X=X,
        y=y,
        task=Task.CLASSIFICATION,
        roles=ColumnRoles(numeric=NUMERIC, boolean=FLAGS, skewed=SKEWED),
        description="Give Me Some Credit: serious delinquency within two years (1 = delinquent).",
        source=str(file),
        metadata={"positive_label": "1"},
    )
