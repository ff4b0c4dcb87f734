"""A populated factory for the dashboard tests (and scripts/screenshots.py): prices, a trained
matrix, two model versions with an explain report, planted drift reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from mlfactory.data import BronzeStore, ingest, load_tickers, make_source
from mlfactory.db import get_engine
from mlfactory.explain import explain_model
from mlfactory.monitoring import detect_drift, save_drift_report
from mlfactory.registry import promote
from mlfactory.settings import Settings, load_settings
from mlfactory.training import train

SPEC = """
name = "cancer"
dataset = "breast_cancer"
preprocessing = "basic"
model = ["LogisticRegression", "KNN"]
seed = 0
[cv]
folds = 2
scoring = ["roc_auc", "accuracy"]
[search]
kind = "none"
"""

DRIFT_COLUMNS = ("a", "b", "c", "d")
PLANTED_SHIFTS = (0, 1, 2, 4)  # columns shifted by 3 sd in successive reports -> shares 0..1


@dataclass
class Factory:
    settings: Settings
    result: object  # mlfactory.training TrainResult
    tickers: list[str]


def save_planted_drift_reports(settings: Settings, model: str = "cancer") -> list[float]:
    """Store one report per entry of PLANTED_SHIFTS; return the planted shares of drift."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(2_000, 4)), columns=list(DRIFT_COLUMNS))
    engine = get_engine(settings.database_url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day, shifted in enumerate(PLANTED_SHIFTS):
        current = pd.DataFrame(rng.normal(size=(2_000, 4)), columns=list(DRIFT_COLUMNS))
        for column in DRIFT_COLUMNS[:shifted]:
            current[column] += 3.0
        report = detect_drift(reference, current)
        report.model = model
        report.created_at = start + timedelta(days=day)
        save_drift_report(engine, report)
    return [k / len(DRIFT_COLUMNS) for k in PLANTED_SHIFTS]


def build_factory(home: Path) -> Factory:
    """Three synthetic tickers, a 2-cell matrix on breast cancer, its best cell promoted to
    ``cancer@challenger`` (v1), the linear cell as ``cancer@champion`` (v2) and explained, and
    four planted drift reports."""
    settings = load_settings(home=home / ".mlfactory")
    tickers = load_tickers().head(3)
    ingest(
        BronzeStore.from_settings(settings),
        tickers,
        make_source("synthetic"),
        date(2024, 1, 1),
        date(2025, 6, 30),
        source_name="synthetic",
    )
    spec = home / "cancer.toml"
    spec.write_text(SPEC)
    result = train(spec, settings)
    promote(settings, "cancer", run_id=result.run_id, alias="challenger")  # best cell: v1
    linear = next(cell for cell in result.cells if "LogisticRegression" in cell.name)
    promote(settings, "cancer", run_id=linear.run_id)  # v2 @champion: linear SHAP is quick
    explain_model(settings, "cancer@champion", max_rows=60, n_repeats=2, out=home / "explain")
    save_planted_drift_reports(settings)
    return Factory(settings, result, list(tickers["ticker"]))
