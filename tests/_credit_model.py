"""Train and register a small credit model in a fresh home (shared by serving and batch tests)."""

from __future__ import annotations

from pathlib import Path

from mlfactory.datasets import write_synthetic
from mlfactory.registry import promote
from mlfactory.settings import Settings, load_settings
from mlfactory.training import ExperimentResult, train

SPEC = """
name = "{name}"
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


def train_registered_credit(
    folder: Path, rows: int, experiment: str
) -> tuple[Settings, ExperimentResult]:
    """Synthetic credit -> power + LogisticRegression, registered as ``credit`` v1 (champion)."""
    home = folder / ".mlfactory"
    settings = load_settings(home=home)
    write_synthetic("credit", rows, settings=settings)
    spec = folder / "credit.toml"
    spec.write_text(SPEC.format(name=experiment))
    result = train(spec, settings)
    promote(settings, "credit", run_id=result.run_id)
    return settings, result
