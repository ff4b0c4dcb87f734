"""Option choices and help texts of the command line, kept import-free.

``mlfactory --help`` must not import pandas, scikit-learn or MLflow (they took ~2 s of every
invocation), so the enums the options need are copied here from the library modules that own
them; ``tests/test_cli_startup.py`` checks that every copy equals its original.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class SourceName(StrEnum):
    """``mlfactory.data._sources.SourceName``."""

    synthetic = "synthetic"
    yfinance = "yfinance"
    csv = "csv"


# mlfactory.data._sources.SOURCES[...].description
SOURCE_DESCRIPTIONS: dict[str, str] = {
    "synthetic": "deterministic GBM prices on business days since 2000-01-03 (no network)",
    "yfinance": "Yahoo Finance via yfinance (pip install 'mlfactory[yfinance]', needs internet)",
    "csv": "your own files: <csv_dir>/<TICKER>.csv with columns "
    "Date, Open, High, Low, Close, Adj Close, Volume",
}
SYNTHETIC_DEFAULT_END = date(2025, 12, 31)  # mlfactory.data._sources.SYNTHETIC_DEFAULT_END


class SyntheticName(StrEnum):
    """``mlfactory.datasets.SyntheticName``."""

    CREDIT = "credit"
    ADULT = "adult"
    FIRES = "fires"


class Task(StrEnum):
    """``mlfactory.datasets._base.Task``."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # mlfactory.settings.LOG_LEVELS

# mlfactory.data._feature_store.SAMPLE_FORMATS and mlfactory.data._featurize.LOCAL_SCHEDULERS
SAMPLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")
