"""Data engineering: the medallion store, features and sampling.

Names are imported from their modules on first use (PEP 562), so ``import mlfactory.data`` and
a command that needs one module (``data featurize``: no pandas) do not load the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlfactory._lazy import lazy_exports

_EXPORTS = {
    "_bronze": ("BronzeStore", "StoreStatus", "TickerStatus", "WriteResult"),
    "_feature_store": (
        "SampleResult",
        "load_features",
        "sample_features",
        "silver_horizons",
    ),
    "_features": ("compute_features", "feature_columns"),
    "_featurize": ("FeaturizeReport", "TickerResult", "featurize"),
    "_ingest": ("IngestReport", "TickerOutcome", "ingest"),
    "_manifest": ("store_fingerprint",),
    "_sources": (
        "SOURCES",
        "CsvSource",
        "NoData",
        "PriceSource",
        "SourceName",
        "SyntheticSource",
        "YFinanceSource",
        "make_source",
        "normalise_yfinance_frame",
        "with_retries",
    ),
    "_tickers": ("default_tickers_path", "load_tickers"),
    "sampling": ("random_sample", "stratified_sample", "time_split"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "SOURCES",
    "BronzeStore",
    "CsvSource",
    "FeaturizeReport",
    "IngestReport",
    "NoData",
    "PriceSource",
    "SampleResult",
    "SourceName",
    "StoreStatus",
    "SyntheticSource",
    "TickerOutcome",
    "TickerResult",
    "TickerStatus",
    "WriteResult",
    "YFinanceSource",
    "compute_features",
    "default_tickers_path",
    "feature_columns",
    "featurize",
    "ingest",
    "load_features",
    "load_tickers",
    "make_source",
    "normalise_yfinance_frame",
    "random_sample",
    "sample_features",
    "silver_horizons",
    "store_fingerprint",
    "stratified_sample",
    "time_split",
    "with_retries",
]

__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)


if TYPE_CHECKING:
    from mlfactory.data._bronze import BronzeStore, StoreStatus, TickerStatus, WriteResult
    from mlfactory.data._feature_store import (
        SampleResult,
        load_features,
        sample_features,
        silver_horizons,
    )
    from mlfactory.data._features import compute_features, feature_columns
    from mlfactory.data._featurize import FeaturizeReport, TickerResult, featurize
    from mlfactory.data._ingest import IngestReport, TickerOutcome, ingest
    from mlfactory.data._manifest import store_fingerprint
    from mlfactory.data._sources import (
        SOURCES,
        CsvSource,
        NoData,
        PriceSource,
        SourceName,
        SyntheticSource,
        YFinanceSource,
        make_source,
        normalise_yfinance_frame,
        with_retries,
    )
    from mlfactory.data._tickers import default_tickers_path, load_tickers
    from mlfactory.data.sampling import random_sample, stratified_sample, time_split
