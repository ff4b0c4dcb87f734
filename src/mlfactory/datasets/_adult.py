"""UCI Adult (census income): loader for ``adult.data``/``adult.test`` and synthetic files.

The UCI files have no header, separate fields by comma + space, mark missing values with ``?``
and label rows ``<=50K``/``>50K`` (``adult.test`` starts with a ``|1x3 Cross validator`` line
and its labels end with a ``.``). The synthetic income is drawn from a KNOWN logistic model
(:data:`ADULT_TRUE_COEFFICIENTS`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.datasets._io import atomic_write, read_csv_checked, require_file
from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings

__all__ = [
    "ADULT_COLUMNS",
    "ADULT_TRUE_COEFFICIENTS",
    "adult_default_dir",
    "load_adult",
    "synth_adult",
    "write_adult",
]

logger = get_logger(__name__)

ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
)
TARGET = "income"
NUMERIC = ("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week")
CATEGORICAL = tuple(c for c in ADULT_COLUMNS if c not in NUMERIC)
SKEWED = ("fnlwgt", "capital_gain", "capital_loss")
LABELS = {"<=50K": 0, ">50K": 1}
TEST_FIRST_LINE = "|1x3 Cross validator"
DATA_FILE, TEST_FILE = "adult.data", "adult.test"

#: ``logit P(income > 50K) = intercept + sum(coef * term)`` for the synthetic rows; terms:
#: ``education_num``, ``age`` (capped at 65), ``hours_per_week``, ``married`` (civ/AF spouse, 0/1),
#: ``male`` (0/1), ``capital_gain_thousands`` (capped at 20), ``exec_or_prof`` (occupation 0/1).
ADULT_TRUE_COEFFICIENTS: dict[str, float] = {
    "intercept": -9.2,
    "education_num": 0.33,
    "age": 0.045,
    "hours_per_week": 0.03,
    "married": 2.0,
    "male": 0.3,
    "capital_gain_thousands": 0.35,
    "exec_or_prof": 0.8,
}

EDUCATION = {
    "Preschool": 1, "1st-4th": 2, "5th-6th": 3, "7th-8th": 4, "9th": 5, "10th": 6, "11th": 7,
    "12th": 8, "HS-grad": 9, "Some-college": 10, "Assoc-voc": 11, "Assoc-acdm": 12,
    "Bachelors": 13, "Masters": 14, "Prof-school": 15, "Doctorate": 16,
}  # fmt: skip
EDUCATION_P = (0.002, 0.005, 0.01, 0.02, 0.016, 0.029, 0.036, 0.013, 0.322, 0.224,
               0.042, 0.033, 0.164, 0.053, 0.018, 0.013)  # fmt: skip
WORKCLASS = (("Private", 0.70), ("Self-emp-not-inc", 0.078), ("Local-gov", 0.064),
             ("State-gov", 0.04), ("Self-emp-inc", 0.034), ("Federal-gov", 0.029),
             ("Without-pay", 0.0005), ("Never-worked", 0.0005))  # fmt: skip
MARITAL = (("Married-civ-spouse", 0.46), ("Never-married", 0.328), ("Divorced", 0.136),
           ("Separated", 0.031), ("Widowed", 0.03), ("Married-spouse-absent", 0.0143),
           ("Married-AF-spouse", 0.0007))  # fmt: skip
OCCUPATION = (("Prof-specialty", 0.127), ("Craft-repair", 0.126), ("Exec-managerial", 0.125),
              ("Adm-clerical", 0.116), ("Sales", 0.112), ("Other-service", 0.101),
              ("Machine-op-inspct", 0.061), ("Transport-moving", 0.049),
              ("Handlers-cleaners", 0.042), ("Farming-fishing", 0.03), ("Tech-support", 0.028),
              ("Protective-serv", 0.02), ("Priv-house-serv", 0.0047), ("Armed-Forces", 0.0003),
              ("?", 0.058))  # fmt: skip
RACE = (("White", 0.854), ("Black", 0.096), ("Asian-Pac-Islander", 0.032),
        ("Amer-Indian-Eskimo", 0.01), ("Other", 0.008))  # fmt: skip
COUNTRY = (("United-States", 0.897), ("Mexico", 0.02), ("?", 0.018), ("Philippines", 0.006),
           ("Germany", 0.0045), ("Canada", 0.0037), ("India", 0.0031), ("England", 0.0028),
           ("Cuba", 0.0029), ("Jamaica", 0.0025), ("South", 0.0025), ("China", 0.0023),
           ("Puerto-Rico", 0.0035), ("El-Salvador", 0.0033), ("Italy", 0.0022),
           ("Vietnam", 0.002), ("Japan", 0.0019), ("Poland", 0.0018), ("Columbia", 0.0018),
           ("Guatemala", 0.002), ("Dominican-Republic", 0.0021), ("Iran", 0.0013))  # fmt: skip

HOW_TO_GET = (
    "Put the UCI 'Adult' files adult.data (and optionally adult.test) there "
    "(https://archive.ics.uci.edu/dataset/2/adult), pass path=..., "
    "or make synthetic ones with: mlfactory data synth adult --rows N"
)


def adult_default_dir(settings: Settings) -> Path:
    """Folder where the loader looks for ``adult.data`` and ``adult.test`` by default."""
    return settings.data_dir / "raw" / "adult"


def _choice(rng: np.random.Generator, table: tuple[tuple[str, float], ...], rows: int):
    names = [name for name, _ in table]
    weights = np.array([weight for _, weight in table])
    return rng.choice(names, size=rows, p=weights / weights.sum())


def synth_adult(rows: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic Adult rows: the 14 UCI features (``?`` for missing) and ``income`` labels."""
    if rows < 1:
        raise DataError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    age = np.clip(np.round(17 + rng.gamma(2.3, 8.5, rows)), 17, 90).astype(int)
    education = rng.choice(list(EDUCATION), size=rows, p=np.array(EDUCATION_P) / sum(EDUCATION_P))
    education_num = np.array([EDUCATION[e] for e in education])
    sex = np.where(rng.random(rows) < 0.67, "Male", "Female")
    marital = _choice(rng, MARITAL, rows)
    young = age < 23
    marital[young & (rng.random(rows) < 0.8)] = "Never-married"
    married = np.isin(marital, ["Married-civ-spouse", "Married-AF-spouse"])
    relationship = np.where(
        married,
        np.where(sex == "Male", "Husband", "Wife"),
        np.where(
            young,
            "Own-child",
            rng.choice(["Not-in-family", "Unmarried", "Other-relative"], rows, p=[0.6, 0.3, 0.1]),
        ),
    )
    occupation = _choice(rng, OCCUPATION, rows)
    workclass = _choice(rng, WORKCLASS, rows)
    workclass[occupation == "?"] = "?"
    hours = np.clip(np.round(rng.normal(40, 11, rows)), 1, 99).astype(int)
    gain = np.where(rng.random(rows) < 0.083, np.round(rng.lognormal(8.3, 1.0, rows)), 0)
    gain = np.minimum(gain, 99999).astype(int)
    loss = np.where(rng.random(rows) < 0.047, np.round(rng.normal(1870, 360, rows)), 0)
    frame = pd.DataFrame(
        {
            "age": age,
            "workclass": workclass,
            "fnlwgt": np.round(rng.lognormal(np.log(178000), 0.55, rows)).astype(int),
            "education": education,
            "education_num": education_num,
            "marital_status": marital,
            "occupation": occupation,
            "relationship": relationship,
            "race": _choice(rng, RACE, rows),
            "sex": sex,
            "capital_gain": gain,
            "capital_loss": np.maximum(loss, 0).astype(int),
            "hours_per_week": hours,
            "native_country": _choice(rng, COUNTRY, rows),
        }
    )
    c = ADULT_TRUE_COEFFICIENTS
    logit = (
        c["intercept"]
        + c["education_num"] * education_num
        + c["age"] * np.minimum(age, 65)
        + c["hours_per_week"] * hours
        + c["married"] * married
        + c["male"] * (sex == "Male")
        + c["capital_gain_thousands"] * np.minimum(gain / 1000.0, 20.0)
        + c["exec_or_prof"] * np.isin(occupation, ["Exec-managerial", "Prof-specialty"])
    )
    positive = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    frame[TARGET] = np.where(positive, ">50K", "<=50K")
    return frame


def _to_uci_text(frame: pd.DataFrame, test: bool) -> str:
    labels = frame[TARGET] + ("." if test else "")
    body = frame[list(ADULT_COLUMNS)].astype(str).assign(**{TARGET: labels})
    lines = [", ".join(row) for row in body.itertuples(index=False, name=None)]
    head = [TEST_FIRST_LINE] if test else []
    return "\n".join([*head, *lines]) + "\n\n"  # the UCI files end with an empty line


def write_adult(train: pd.DataFrame, folder: Path, test: pd.DataFrame | None = None) -> list[Path]:
    """Write ``adult.data`` (and ``adult.test`` when given) into ``folder`` in the UCI format."""
    folder = Path(folder)
    written = [
        atomic_write(folder / DATA_FILE, lambda tmp: tmp.write_text(_to_uci_text(train, False)))
    ]
    if test is not None:
        written.append(
            atomic_write(folder / TEST_FILE, lambda tmp: tmp.write_text(_to_uci_text(test, True)))
        )
    return written


def _read_uci(file: Path, test: bool) -> pd.DataFrame:
    frame = read_csv_checked(
        file,
        header=None,
        names=[*ADULT_COLUMNS, TARGET],
        sep=",",
        skipinitialspace=True,
        skiprows=1 if test else 0,
        na_values=["?"],
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=True,
        index_col=False,
    )
    if frame[TARGET].isna().any() or (frame[TARGET].astype(str).str.strip() == "").any():
        raise DataError(
            f"adult file {file}: expected 15 comma-separated fields per row "
            f"({', '.join(ADULT_COLUMNS)}, income); some rows have fewer"
        )
    labels = frame[TARGET].astype(str).str.strip().str.rstrip(".")
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise DataError(
            f"adult file {file}: income labels must be one of {', '.join(LABELS)}, "
            f"found {', '.join(unknown[:5])}"
        )
    frame[TARGET] = labels.map(LABELS).astype(int)
    for column in NUMERIC:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            raise DataError(f"adult file {file}: column {column} must be numeric")
        frame[column] = values
    return frame


def load_adult(
    path: str | Path | None = None,
    *,
    include_test: bool = False,
    settings: Settings | None = None,
) -> Dataset:
    """Load UCI Adult from a folder (or an ``adult.data`` file).

    ``include_test`` appends the rows of ``adult.test`` from the same folder.
    """
    settings = settings or get_settings()
    location = Path(path) if path is not None else adult_default_dir(settings)
    data_file = location / DATA_FILE if location.is_dir() or location.suffix == "" else location
    require_file(data_file, HOW_TO_GET)
    parts = [_read_uci(data_file, test=False)]
    sources = [str(data_file)]
    if include_test:
        test_file = data_file.with_name(TEST_FILE)
        require_file(test_file, HOW_TO_GET)
        parts.append(_read_uci(test_file, test=True))
        sources.append(str(test_file))
    frame = pd.concat(parts, ignore_index=True)
    X = frame[list(ADULT_COLUMNS)]
    y = frame[TARGET].rename(TARGET)
    logger.info("loaded adult: %d rows from %s", len(X), ", ".join(sources))
    return Dataset(
        name="adult",
        X=X,
        y=y,
        task=Task.CLASSIFICATION,
        roles=ColumnRoles(numeric=NUMERIC, categorical=CATEGORICAL, skewed=SKEWED),
        description="UCI Adult census income: income > 50K (1) or not (0).",
        source=", ".join(sources),
        metadata={"positive_label": "1", "rows_train_file": str(len(parts[0]))},
    )
