"""One trained and registered credit model for all serving tests, and a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from _credit_model import train_registered_credit
from _serving_helpers import ThreadedServer

from mlfactory.datasets import load_dataset
from mlfactory.registry import promote
from mlfactory.settings import Settings, load_settings
from mlfactory.training import train


@dataclass
class Registered:
    settings: Settings
    run_id: str
    X: pd.DataFrame  # credit features (test rows to score)
    pipeline: object  # the fitted pipeline, in process


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Credit (synthetic, 1500 rows) -> power + LogisticRegression, registered as 'credit' v1."""
    settings, result = train_registered_credit(
        tmp_path_factory.mktemp("serving"), 1500, "credit-serve"
    )
    X = load_dataset("credit", settings=settings).X
    return Registered(settings, result.best.run_id, X, result.best.outcome.best_estimator)


MIXED_SPEC = """
name = "mixed"
dataset = {{ path = "{path}", target = "target" }}
preprocessing = "basic"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
[search]
kind = "none"
"""


@pytest.fixture(scope="session")
def mixed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A model with an integer (long), a double and a string column, registered as 'mixed' v1."""
    folder = tmp_path_factory.mktemp("mixed")
    settings = load_settings(home=folder / ".mlfactory")
    rng = np.random.default_rng(0)
    rows = 200
    frame = pd.DataFrame(
        {
            "count": rng.integers(0, 50, rows),
            "amount": rng.normal(size=rows),
            "city": rng.choice(["a", "b", "c"], rows),
        }
    )
    frame["target"] = (frame["count"] + 10 * frame["amount"] > 25).astype(int)
    frame.to_csv(folder / "mixed.csv", index=False)
    spec = folder / "mixed.toml"
    spec.write_text(MIXED_SPEC.format(path=(folder / "mixed.csv").as_posix()))
    result = train(spec, settings)
    promote(settings, "mixed", run_id=result.run_id)
    return settings


@pytest.fixture
def serve() -> Iterator:
    """Start apps on real servers; all stopped (and their logs flushed) at teardown."""
    servers: list[ThreadedServer] = []

    def start(app) -> ThreadedServer:
        server = ThreadedServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()
