"""One trained and registered credit model for the batch scoring tests."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
from _credit_model import train_registered_credit

from mlfactory.datasets import load_dataset
from mlfactory.registry import load_model
from mlfactory.settings import Settings


@dataclass
class Registered:
    settings: Settings
    X: pd.DataFrame  # credit features with an "id" key column
    model: object  # the registered pipeline, loaded in process


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Credit (synthetic, 1200 rows) -> power + LogisticRegression, registered as 'credit' v1."""
    settings, _ = train_registered_credit(tmp_path_factory.mktemp("batch"), 1200, "credit-batch")
    X = load_dataset("credit", settings=settings).X.reset_index(drop=True)
    X.insert(0, "id", range(1000, 1000 + len(X)))
    return Registered(settings, X, load_model(settings, "credit").model)
