"""Where the medallion store lives and what its tables look like.

bronze: raw daily prices, ``STORE/bronze/prices/ticker=T/year=Y/part-0.parquet``
silver: features, ``STORE/silver/features/ticker=T/part-FIRST-LAST-HASH.parquet``: blocks of
        consecutive years (a full build: every year but the last in one block, the last year in
        its own; each later year in its own), so new days rewrite the newest block only

``STORE`` is ``MLFACTORY_STORE_URL``: ``HOME/data`` by default (a :class:`Path` is returned) or
``s3://bucket/prefix`` (a URL string is returned; see :mod:`mlfactory.storage`).

The store columns are snake_case; sources speak yfinance's names (``Date``, ``Adj Close``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mlfactory.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

    BRONZE_SCHEMA: pa.Schema

__all__ = [
    "BRONZE_SCHEMA",
    "SILVER_LEGACY_FILE",
    "SOURCE_COLUMNS",
    "SOURCE_TO_STORE",
    "bronze_prices_dir",
    "parse_silver_name",
    "silver_block_name",
    "silver_features_dir",
    "silver_files_by_ticker",
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
# Built on first use (module ``__getattr__``): importing the layout does not import pyarrow.
def _bronze_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
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


def __getattr__(name: str) -> object:
    if name == "BRONZE_SCHEMA":
        schema = _bronze_schema()
        globals()["BRONZE_SCHEMA"] = schema
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _under_store(settings: Settings, *parts: str) -> Path | str:
    if settings.store_url is None:
        return settings.data_dir.joinpath(*parts)
    root = settings.store_root
    return "/".join([root, *parts]) if settings.store_is_remote else Path(root).joinpath(*parts)


def bronze_prices_dir(settings: Settings) -> Path | str:
    return _under_store(settings, "bronze", "prices")


def silver_features_dir(settings: Settings) -> Path | str:
    return _under_store(settings, "silver", "features")


# Silver: each ticker's features in blocks of consecutive years, one file per block.
SILVER_LEGACY_FILE = "part-0.parquet"  # one file per ticker, written before blocks (still read)
_SILVER_BLOCK = re.compile(r"^ticker=([^/]+)/part-(\d{4})-(\d{4})(?:-[0-9a-f]{8})?\.parquet$")
_SILVER_LEGACY = re.compile(r"^ticker=([^/]+)/" + re.escape(SILVER_LEGACY_FILE) + "$")


def silver_block_name(ticker: str, first: int, last: int, version: str = "") -> str:
    """A silver block's path relative to the store (its key in the silver manifest).

    ``version``: 8 hex digits of the file's SHA-256. A rewritten block gets a new name and the
    old file is deleted once the manifest lists the new one: a file is never renamed over
    another (ext4 flushes such a file before the rename, behind whatever else is being written
    back: ~3 ms a file after a full build, against 0.05 ms for a new name)."""
    suffix = f"-{version}" if version else ""
    return f"ticker={ticker}/part-{first:04d}-{last:04d}{suffix}.parquet"


def parse_silver_name(name: str) -> tuple[str, int | None, int | None] | None:
    """``(ticker, first year, last year)`` of a silver file name (years ``None``: a single
    file of the older layout); ``None`` when it is no silver data file."""
    match = _SILVER_BLOCK.match(name)
    if match:
        return match.group(1), int(match.group(2)), int(match.group(3))
    match = _SILVER_LEGACY.match(name)
    return (match.group(1), None, None) if match else None


def silver_files_by_ticker(names: Iterable[str]) -> dict[str, list[str]]:
    """The silver data files of each ticker, in year order (from the manifest's names)."""
    found: dict[str, list[str]] = {}
    for name in sorted(names):
        parsed = parse_silver_name(name)
        if parsed is not None:
            found.setdefault(parsed[0], []).append(name)
    return dict(sorted(found.items()))
