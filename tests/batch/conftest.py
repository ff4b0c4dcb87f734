"""One trained and registered credit model for the batch scoring tests."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
import typer
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


def predict_app(settings: Settings):
    """``mlfactory predict`` alone in a Typer app whose settings are ``settings``."""
    from mlfactory.cli._common import MlfactoryGroup
    from mlfactory.cli._predict import predict_command

    app = typer.Typer(cls=MlfactoryGroup)

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = settings

    app.command("predict")(predict_command)
    return app


@pytest.fixture
def run_predict(registered: Registered):
    """Run ``mlfactory predict ARGS`` (CliRunner) with the registered model's settings."""
    from typer.testing import CliRunner

    def run(*args: str, settings: Settings | None = None):
        app = predict_app(settings or registered.settings)
        return CliRunner().invoke(app, ["predict", *args])

    return run
