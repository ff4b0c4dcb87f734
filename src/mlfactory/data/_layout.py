"""Where the medallion store lives and what its tables look like.

bronze: raw daily prices, ``STORE/bronze/prices/ticker=T/year=Y/part-0.parquet``
silver: features, ``STORE/silver/features/ticker=T/...``

``STORE`` is ``MLFACTORY_STORE_URL``: ``HOME/data`` by default (a :class:`Path` is returned) or
``s3://bucket/prefix`` (a URL string is returned; see :mod:`mlfactory.storage`).

The store columns are snake_case; sources speak yfinance's names (``Date``, ``Adj Close``...).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mlfactory.settings import Settings

__all__ = [
    "BRONZE_SCHEMA",
    "SOURCE_COLUMNS",
    "SOURCE_TO_STORE",
    "bronze_prices_dir",
    "silver_features_dir",
]

# What every source returns (yfinance's vocabulary).
SOURCE_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
SOURCE_TO_STORE = {
    "Date": "date",
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}

# Columns stored inside each bronze parquet file; ``ticker`` and ``year`` come from the hive path.
BRONZE_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("adj_close", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("sector", pa.string()),
        pa.field("subsector", pa.string()),
    ]
)


def _under_store(settings: Settings, *parts: str) -> Path | str:
    if settings.store_url is None:
        return settings.data_dir.joinpath(*parts)
    root = settings.store_root
    return "/".join([root, *parts]) if settings.store_is_remote else Path(root).joinpath(*parts)


def bronze_prices_dir(settings: Settings) -> Path | str:
    return _under_store(settings, "bronze", "prices")


def silver_features_dir(settings: Settings) -> Path | str:
    return _under_store(settings, "silver", "features")
