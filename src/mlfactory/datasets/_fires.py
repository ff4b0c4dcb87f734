"""UCI Forest Fires (``forestfires.csv``): loader and a synthetic file in the same format.

Regression on the burned ``area`` (hectares; heavily skewed, about half zeros). The synthetic
area comes from a KNOWN function of temperature, relative humidity and wind
(:data:`FIRES_TRUE_COEFFICIENTS`).
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
    "FIRES_COLUMNS",
    "FIRES_TRUE_COEFFICIENTS",
    "fires_default_path",
    "load_fires",
    "synth_fires",
    "write_fires",
]

logger = get_logger(__name__)

FIRES_COLUMNS: dict[str, str] = {
    "X": "coord_x",
    "Y": "coord_y",
    "month": "month",
    "day": "day",
    "FFMC": "ffmc",
    "DMC": "dmc",
    "DC": "dc",
    "ISI": "isi",
    "temp": "temp",
    "RH": "rh",
    "wind": "wind",
    "rain": "rain",
    "area": "area",
}
TARGET = "area"
CATEGORICAL = ("month", "day")
NUMERIC = ("coord_x", "coord_y", "ffmc", "dmc", "dc", "isi", "temp", "rh", "wind", "rain")
SKEWED = ("isi", "rain")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_COUNTS = (2, 20, 54, 9, 2, 17, 32, 184, 172, 15, 1, 9)  # as in the UCI file
MONTH_TEMP = (5, 9, 13, 13, 15, 20, 22, 22, 20, 17, 11, 5)
MONTH_DC = (50, 60, 80, 100, 130, 300, 450, 650, 700, 700, 100, 300)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Synthetic burned area: a fire burns with ``P = expit(burn_intercept + burn_temp*(temp-19)
#: + burn_rh*(rh-44) + burn_wind*(wind-4))``; when it burns,
#: ``log1p(area) = size_intercept + size_temp*temp + size_rh*rh + size_wind*wind``
#: ``+ N(0, size_noise)`` (floored at 0.01).
FIRES_TRUE_COEFFICIENTS: dict[str, float] = {
    "burn_intercept": 0.1,
    "burn_temp": 0.12,
    "burn_rh": -0.03,
    "burn_wind": 0.25,
    "size_intercept": 0.3,
    "size_temp": 0.09,
    "size_rh": -0.02,
    "size_wind": 0.25,
    "size_noise": 0.6,
}

HOW_TO_GET = (
    "Put the UCI 'Forest Fires' file forestfires.csv there "
    "(https://archive.ics.uci.edu/dataset/162/forest+fires), pass path=..., "
    "or make a synthetic one with: mlfactory data synth fires --rows N"
)


def fires_default_path(settings: Settings) -> Path:
    """Where the loader looks for ``forestfires.csv`` by default."""
    return settings.data_dir / "raw" / "fires" / "forestfires.csv"


def synth_fires(rows: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic ``forestfires.csv`` rows (UCI column names) with a learnable burned area."""
    if rows < 1:
        raise DataError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    weights = np.array(MONTH_COUNTS, dtype=float)
    month_idx = rng.choice(12, size=rows, p=weights / weights.sum())
    temp = np.clip(rng.normal(np.take(MONTH_TEMP, month_idx), 4.0), 2.2, 33.3)
    rh = np.clip(np.round(95 - 2.2 * temp + rng.normal(0, 12, rows)), 15, 100)
    wind = np.clip(rng.gamma(4.0, 1.0, rows), 0.4, 9.4)
    rain = np.where(rng.random(rows) < 0.02, np.clip(rng.exponential(0.8, rows), 0.2, 6.4), 0.0)
    ffmc = np.clip(100 - 0.18 * rh + rng.normal(0, 2.5, rows), 18.7, 96.2)
    dmc = np.clip(rng.gamma(2.0, 55 * np.take(MONTH_DC, month_idx) / 650), 1.1, 291.3)
    dc = np.clip(rng.normal(np.take(MONTH_DC, month_idx), 60), 7.9, 860.6)
    isi = np.clip(0.25 * wind * np.exp(0.09 * (ffmc - 85)) * rng.lognormal(0, 0.3, rows), 0, 56.1)

    c = FIRES_TRUE_COEFFICIENTS
    burn_logit = (
        c["burn_intercept"]
        + c["burn_temp"] * (temp - 19)
        + c["burn_rh"] * (rh - 44)
        + c["burn_wind"] * (wind - 4)
    )
    burns = rng.random(rows) < 1.0 / (1.0 + np.exp(-burn_logit))
    size = (
        c["size_intercept"]
        + c["size_temp"] * temp
        + c["size_rh"] * rh
        + c["size_wind"] * wind
        + rng.normal(0, c["size_noise"], rows)
    )
    area = np.where(burns, np.expm1(np.maximum(size, 0.01)), 0.0)
    return pd.DataFrame(
        {
            "X": rng.integers(1, 10, rows),
            "Y": rng.integers(2, 10, rows),
            "month": np.take(MONTHS, month_idx),
            "day": rng.choice(DAYS, rows),
            "FFMC": np.round(ffmc, 1),
            "DMC": np.round(dmc, 1),
            "DC": np.round(dc, 1),
            "ISI": np.round(isi, 1),
            "temp": np.round(temp, 1),
            "RH": rh.astype(int),
            "wind": np.round(wind, 1),
            "rain": np.round(rain, 1),
            "area": np.round(area, 2),
        }
    )


def write_fires(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as ``forestfires.csv`` (header, no index)."""
    return atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=False))


def load_fires(path: str | Path | None = None, *, settings: Settings | None = None) -> Dataset:
    """Load ``forestfires.csv``: snake_case columns, month/day categorical, target ``area``."""
    settings = settings or get_settings()
    file = Path(path) if path is not None else fires_default_path(settings)
    require_file(file, HOW_TO_GET)
    raw = read_csv_checked(file)
    require_columns(raw, list(FIRES_COLUMNS), f"fires file {file}")
    frame = raw[list(FIRES_COLUMNS)].rename(columns=FIRES_COLUMNS)
    for column in (*NUMERIC, TARGET):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            raise DataError(f"fires file {file}: column {column} must be numeric without gaps")
        frame[column] = values.astype(float)
    bad = sorted(set(frame["month"].astype(str)) - set(MONTHS))
    if bad:
        raise DataError(
            f"fires file {file}: unknown month(s) {', '.join(bad[:5])}; "
            f"expected one of {', '.join(MONTHS)}"
        )
    frame["month"] = frame["month"].astype(str)
    frame["day"] = frame["day"].astype(str)
    X = frame[[*NUMERIC[:2], *CATEGORICAL, *NUMERIC[2:]]]
    y = frame[TARGET].rename(TARGET)
    logger.info("loaded fires: %d rows from %s", len(X), file)
    return Dataset(
        name="fires",
        X=X,
        y=y,
        task=Task.REGRESSION,
        roles=ColumnRoles(numeric=NUMERIC, categorical=CATEGORICAL, skewed=SKEWED),
        description="UCI Forest Fires: burned area in hectares (skewed; consider log1p).",
        source=str(file),
        metadata={"target_transform_hint": "log1p"},
    )
