"""Data engineering: the medallion store, features and sampling."""

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
