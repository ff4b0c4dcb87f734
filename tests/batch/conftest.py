"""One trained and registered credit model for the batch scoring tests."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from mlfactory.datasets import load_dataset, write_synthetic
from mlfactory.registry import load_model, promote
from mlfactory.settings import Settings, load_settings
from mlfactory.training import train

SPEC = """
name = "credit-batch"
dataset = "credit"
preprocessing = "power"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "none"
"""


@dataclass
class Registered:
    settings: Settings
    X: pd.DataFrame  # credit features with an "id" key column
    model: object  # the registered pipeline, loaded in process


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Credit (synthetic, 1200 rows) -> power + LogisticRegression, registered as 'credit' v1."""
    home = tmp_path_factory.mktemp("batch") / ".mlfactory"
    settings = load_settings(home=home)
    write_synthetic("credit", 1200, settings=settings)
    spec = home.parent / "credit.toml"
    spec.write_text(SPEC)
    result = train(spec, settings)
    promote(settings, "credit", run_id=result.run_id)
    X = load_dataset("credit", settings=settings).X.reset_index(drop=True)
    X.insert(0, "id", range(1000, 1000 + len(X)))
    return Registered(settings, X, load_model(settings, "credit").model)
