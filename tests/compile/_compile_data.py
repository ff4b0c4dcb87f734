"""Data for the compiled-path tests (a module of its own: ``conftest`` is ambiguous to import).

``mixed_frame`` is small tabular data with every column type a recipe handles (doubles with
missing values, a skewed column, an integer count, a boolean flag, a string category) and three
targets (two classes, three classes, a value). ``promoted`` trains every zoo family and every
recipe on it through ``mlfactory train`` and promotes each cell, so the registry compiles it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlfactory.models import list_models
from mlfactory.preprocessing import RECIPES

FEATURES = ["a", "b", "c", "flag", "city"]
CLASSIFIERS = list_models("classification")
REGRESSORS = list_models("regression")
PROMOTED = [
    *(f"cls-{m}" for m in CLASSIFIERS),
    *(f"reg-{m}" for m in REGRESSORS),
    *(f"recipe-{r}" for r in RECIPES),
]
"""Every registered name ``promoted`` makes: each zoo family per task, each recipe."""


def mixed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows) * 50,
            "b": rng.lognormal(size=rows),
            "c": rng.integers(0, 40, rows),
            "flag": rng.random(rows) < 0.3,
            "city": rng.choice(["north", "south", "east"], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "a"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "b"] = np.nan
    score = (
        np.nan_to_num(frame["a"]) / 50
        + np.log(frame["b"].fillna(1.0))
        + (frame["city"] == "north")
        + frame["flag"]
        + rng.normal(size=rows)
    )
    frame["target"] = (score > 0.5).astype(int)
    frame["multi"] = np.digitize(score, [0.0, 1.0])
    frame["value"] = score * 100.0
    return frame
