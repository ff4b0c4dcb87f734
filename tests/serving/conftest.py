"""One trained and registered credit model for all serving tests, and a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest
from _credit_model import train_registered_credit
from _serving_helpers import ThreadedServer

from mlfactory.datasets import load_dataset
from mlfactory.settings import Settings


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
