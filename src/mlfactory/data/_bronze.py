"""The bronze store: raw daily prices as hive-partitioned parquet, written atomically.

Layout (see :mod:`mlfactory.data._layout`)::

    ROOT/ticker=T/year=Y/part-0.parquet     BRONZE_SCHEMA columns (ticker, year: from the path)
    ROOT/_manifest.json                     last ingest time and parameters
    ROOT/.lock                              held by the single writer during an ingest

Every partition is first written to a hidden temp file (``.part-0.parquet.<hex>.tmp``) in its own
folder and then renamed over the old one with :func:`os.replace`, so readers only ever see whole
files; names starting with ``.`` or ``_`` are skipped by pyarrow and dask dataset discovery.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlfactory.data._layout import BRONZE_SCHEMA, SOURCE_TO_STORE, bronze_prices_dir
from mlfactory.data._sources import normalise_source_frame
from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings

__all__ = ["BronzeStore", "StoreStatus", "TickerStatus", "WriteResult"]

logger = get_logger(__name__)

PART_FILE = "part-0.parquet"
MANIFEST_FILE = "_manifest.json"
LOCK_FILE = ".lock"
TEMP_SUFFIX = ".tmp"
_TICKER = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9.^_\-]{0,31}$")
_YEAR_DIR = re.compile(r"^year=(\d{4})$")
_PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")


@dataclass(frozen=True)
class WriteResult:
    """What :meth:`BronzeStore.write_ticker` changed for one ticker."""

    ticker: str
    rows_added: int
    years_written: tuple[int, ...]
    created: bool

    @property
    def changed(self) -> bool:
        return bool(self.years_written)


@dataclass(frozen=True)
class TickerStatus:
    """One ticker in the store; ``error`` is set (and the figures partial) when a file is bad."""

    ticker: str
    first: date | None
    last: date | None
    partitions: int
    rows: int
    bytes: int
    error: str | None = None


@dataclass(frozen=True)
class StoreStatus:
    """Every ticker in the store plus the last recorded ingest."""

    root: Path
    tickers: list[TickerStatus] = field(default_factory=list)
    last_ingest: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tickers)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tickers)

    @property
    def partitions(self) -> int:
        return sum(t.partitions for t in self.tickers)

    @property
    def first(self) -> date | None:
        return min((t.first for t in self.tickers if t.first), default=None)

    @property
    def last(self) -> date | None:
        return max((t.last for t in self.tickers if t.last), default=None)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def _to_table(frame: pd.DataFrame) -> pa.Table:
    """Store-column DataFrame -> table with exactly ``BRONZE_SCHEMA`` (no pandas metadata)."""
    arrays = [pa.array(frame["date"].to_numpy().astype("datetime64[D]"), pa.date32())]
    arrays += [pa.array(frame[c].to_numpy(dtype="float64"), pa.float64()) for c in _PRICE_COLUMNS]
    arrays.append(pa.array(frame["volume"].to_numpy(dtype="int64"), pa.int64()))
    arrays += [
        pa.array(frame[c].astype(str).tolist(), pa.string()) for c in ("sector", "subsector")
    ]
    return pa.Table.from_arrays(arrays, schema=BRONZE_SCHEMA)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas(date_as_object=False)
    frame["date"] = frame["date"].astype("datetime64[ns]")
    return frame


class BronzeStore:
    """Raw daily prices under ``root`` (``HOME/data/bronze/prices`` by default).

    One writer at a time (see :meth:`writer_lock`); any number of readers, at any moment.
    ``fsync=True`` flushes each file to disk before it is renamed into place (crash-safe across
    power loss, not only process kills); turn it off for throwaway stores and benchmarks.
    """

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> BronzeStore:
        return cls(bronze_prices_dir(settings), **kwargs)

    def __repr__(self) -> str:
        return f"BronzeStore({str(self.root)!r})"

    # Paths ------------------------------------------------------------------------------
    def ticker_dir(self, ticker: str) -> Path:
        if not _TICKER.match(ticker):
            raise DataError(
                f"invalid ticker {ticker!r}: expected 1-32 letters, digits or . _ - ^ "
                "(no '=', '/', '%' or spaces)"
            )
        return self.root / f"ticker={ticker}"

    def partition_path(self, ticker: str, year: int) -> Path:
        return self.ticker_dir(ticker) / f"year={year}" / PART_FILE

    def tickers(self) -> list[str]:
        """Tickers that have at least one partition folder, sorted."""
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            if child.is_dir() and child.name.startswith("ticker="):
                found.append(child.name.removeprefix("ticker="))
        return sorted(found)

    def years(self, ticker: str) -> list[int]:
        """Years of the ticker that hold a (complete) partition file, ascending."""
        folder = self.ticker_dir(ticker)
        if not folder.is_dir():
            return []
        years = []
        for child in folder.iterdir():
            match = _YEAR_DIR.match(child.name)
            if match and (child / PART_FILE).is_file():
                years.append(int(match.group(1)))
        return sorted(years)

    # Reading ----------------------------------------------------------------------------
    def _bad_file(self, path: Path, what: str) -> DataError:
        return DataError(
            f"bronze file {path} {what}; move it away or delete {path.parent.parent} "
            "and run `mlfactory data ingest` again to fetch that ticker anew"
        )

    def _metadata(self, path: Path) -> pq.FileMetaData:
        try:
            metadata = pq.read_metadata(path)
            schema = metadata.schema.to_arrow_schema()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._bad_file(path, f"is not a readable parquet file ({exc})") from None
        self._check_schema(path, schema)
        return metadata

    def _check_schema(self, path: Path, schema: pa.Schema) -> None:
        if not schema.equals(BRONZE_SCHEMA, check_metadata=False):
            found = ", ".join(f"{f.name}:{f.type}" for f in schema)
            expected = ", ".join(f"{f.name}:{f.type}" for f in BRONZE_SCHEMA)
            raise self._bad_file(path, f"has columns ({found}); expected ({expected})")

    def read_partition(self, ticker: str, year: int) -> pa.Table:
        """One partition as a table of ``BRONZE_SCHEMA``; :class:`DataError` naming a bad file."""
        path = self.partition_path(ticker, year)
        try:
            table = pq.ParquetFile(path).read()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._bad_file(path, f"is not a readable parquet file ({exc})") from None
        self._check_schema(path, table.schema)
        return table

    def _date_bound(self, ticker: str, year: int, which: str) -> date | None:
        """Min or max date of a partition from the footer statistics (column read as fallback)."""
        path = self.partition_path(ticker, year)
        metadata = self._metadata(path)
        index = BRONZE_SCHEMA.get_field_index("date")
        values = []
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_min_max:
                values = None
                break
            values.append(stats.max if which == "max" else stats.min)
        if values is None:
            try:
                column = pq.read_table(path, columns=["date"], partitioning=None)["date"]
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise self._bad_file(path, f"is not a readable parquet file ({exc})") from None
            values = column.to_pylist()
        if not values:
            return None
        return max(values) if which == "max" else min(values)

    def first_date(self, ticker: str) -> date | None:
        """Oldest stored date of the ticker, from the oldest year partition only (cheap)."""
        years = self.years(ticker)
        return self._date_bound(ticker, years[0], "min") if years else None

    def last_date(self, ticker: str) -> date | None:
        """Newest stored date of the ticker, from the newest year partition only (cheap)."""
        years = self.years(ticker)
        return self._date_bound(ticker, years[-1], "max") if years else None

    def last_dates(self) -> dict[str, date]:
        """Newest stored date of every ticker; :class:`DataError` names the first bad file."""
        out = {}
        for ticker in self.tickers():
            last = self.last_date(ticker)
            if last is not None:
                out[ticker] = last
        return out

    def read(self, tickers: list[str] | None = None) -> pd.DataFrame:
        """All rows of the given tickers (all when ``None``), with a ``ticker`` column, sorted."""
        names = self.tickers() if tickers is None else list(tickers)
        tables = []
        for ticker in names:
            for year in self.years(ticker):
                table = self.read_partition(ticker, year)
                tables.append(
                    table.add_column(0, "ticker", pa.array([ticker] * len(table), pa.string()))
                )
        if not tables:
            empty = BRONZE_SCHEMA.insert(0, pa.field("ticker", pa.string()))
            return _to_frame(empty.empty_table())
        frame = _to_frame(pa.concat_tables(tables))
        return frame.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)

    # Writing ----------------------------------------------------------------------------
    def _write_atomic(self, table: pa.Table, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _temp_path(path)
        try:
            pq.write_table(table, temp)
            if self.fsync:
                fd = os.open(temp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync_dir(path.parent)

    def write_ticker(
        self, ticker: str, frame: pd.DataFrame, sector: str = "", subsector: str = ""
    ) -> WriteResult:
        """Merge source rows (``SOURCE_COLUMNS``) into the ticker's year partitions.

        Only the years that receive new or changed rows are rewritten (oldest first, so a crash
        never leaves a gap before the newest stored date); a repeated date takes the new row.
        """
        self.ticker_dir(ticker)  # validates the name before any work
        created = not self.years(ticker)
        if frame.empty:
            return WriteResult(ticker, 0, (), created=False)
        rows = normalise_source_frame(frame, f"rows for {ticker}").rename(columns=SOURCE_TO_STORE)
        rows["sector"] = sector
        rows["subsector"] = subsector
        table = _to_table(rows)  # sorted by date, so each year is one contiguous slice
        year_of = rows["date"].dt.year.to_numpy()
        years, offsets = np.unique(year_of, return_index=True)
        bounds = [*offsets.tolist(), len(rows)]
        added = 0
        written: list[int] = []
        for i, year in enumerate(years.tolist()):
            part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
            path = self.partition_path(ticker, year)
            if path.is_file():
                old = _to_frame(self.read_partition(ticker, year))
                new = _to_frame(part)
                kept = old[~old["date"].isin(new["date"])]
                merged = pd.concat([kept, new], ignore_index=True)
                merged = merged.sort_values("date", kind="stable").reset_index(drop=True)
                if merged.equals(old):
                    continue
                part, rows_added = _to_table(merged), len(merged) - len(old)
            else:
                rows_added = part.num_rows
            self._write_atomic(part, path)
            added += rows_added
            written.append(year)
        if written:
            logger.debug("%s: wrote years %s (+%d rows)", ticker, written, added)
        return WriteResult(ticker, added, tuple(written), created=created and bool(written))

    # Housekeeping -----------------------------------------------------------------------
    def clean_temp_files(self) -> int:
        """Delete temp files a killed writer left behind; returns how many. Writers only."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for path in self.root.rglob(f".*{TEMP_SUFFIX}"):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            logger.info("removed %d stale temp file(s) under %s", removed, self.root)
        return removed

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the store's exclusive writer lock (released by the OS even if killed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock, single writer assumed
            yield
            return
        with open(self.root / LOCK_FILE, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataError(
                    f"another ingest is writing to {self.root}; wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def manifest(self) -> dict[str, Any] | None:
        """The last recorded ingest (``None`` before the first or if unreadable)."""
        path = self.root / MANIFEST_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable manifest %s: %s", path, exc)
            return None

    def record_ingest(self, info: dict[str, Any]) -> None:
        """Atomically write the manifest with ``info`` and the current UTC time."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / MANIFEST_FILE
        payload = {"last_ingest": datetime.now(UTC).isoformat(timespec="seconds"), **info}
        temp = _temp_path(path)
        try:
            temp.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def status(self) -> StoreStatus:
        """Per-ticker date range, partitions, rows and bytes from parquet footers (no data read)."""
        entries = []
        for ticker in self.tickers():
            years = self.years(ticker)
            rows = size = 0
            first = last = None
            error = None
            try:
                for year in years:
                    path = self.partition_path(ticker, year)
                    size += path.stat().st_size
                    rows += self._metadata(path).num_rows
                if years:
                    first = self._date_bound(ticker, years[0], "min")
                    last = self._date_bound(ticker, years[-1], "max")
            except DataError as exc:
                error = str(exc)
            entries.append(TickerStatus(ticker, first, last, len(years), rows, size, error))
        return StoreStatus(self.root, entries, self.manifest())
