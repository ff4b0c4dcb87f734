"""The bronze store: raw daily prices as hive-partitioned parquet, written atomically.

Layout (see :mod:`mlfactory.data._layout`), a local folder or ``s3://bucket/prefix/…``::

    ROOT/ticker=T/year=Y/part-0.parquet     BRONZE_SCHEMA columns (ticker, year: from the path)
    ROOT/_manifest.json                     the index: every partition (rows, bytes, SHA-256,
                                            first/last date, written time) + the last ingest
    ROOT/.lock                              held by the single writer during an ingest (local)

Every partition is written whole: locally to a hidden temp file (``.part-0.parquet.<hex>.tmp``)
renamed over the old one with :func:`os.replace`, on S3 with one PUT. The manifest is rewritten
after each ticker's partitions, so a new partition becomes visible to readers of the store only
when the manifest lists it; names starting with ``.`` or ``_`` are skipped by pyarrow and dask
dataset discovery. Readers find tickers and years in the manifest, never by listing; a store of
an older version without partitions in its manifest is listed once and indexed by its next ingest.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mlfactory.data import _layout
from mlfactory.data._layout import SOURCE_TO_STORE, bronze_prices_dir
from mlfactory.data._lazy import lazy_module
from mlfactory.data._manifest import partition_entry, read_manifest, write_manifest
from mlfactory.data._sources import normalise_source_frame
from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings
from mlfactory.storage import (
    Location,
    open_location,
    read_bytes,
    translated,
    write_bytes,
)

# imported when first used: a no-op ingest decides from the manifest without them
np = lazy_module("numpy")
pa = lazy_module("pyarrow")
pc = lazy_module("pyarrow.compute")
pq = lazy_module("pyarrow.parquet")
pd = lazy_module("pandas")

__all__ = ["BronzeStore", "StoreStatus", "TickerStatus", "WriteResult"]

logger = get_logger(__name__)

PART_FILE = "part-0.parquet"
TEMP_SUFFIX = ".tmp"
_TICKER = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9.^_\-]{0,31}$")
_YEAR_DIR = re.compile(r"^year=(\d{4})$")
_PARTITION = re.compile(r"^ticker=([^/]+)/year=(\d{4})/" + re.escape(PART_FILE) + "$")
_PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
SOURCE_OF = {store: source for source, store in SOURCE_TO_STORE.items()}


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

    root: Path | str
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


def _bronze_table(dates, prices: list, volume, sector: list, subsector: list) -> pa.Table:
    """Columns (pandas Series, numpy arrays or lists) -> a table with exactly ``BRONZE_SCHEMA``
    (no pandas metadata); ``prices`` in the order of ``_PRICE_COLUMNS``."""
    arrays = [pa.array(np.asarray(dates).astype("datetime64[D]"), pa.date32())]
    arrays += [pa.array(np.asarray(p, dtype="float64"), pa.float64()) for p in prices]
    arrays.append(pa.array(np.asarray(volume, dtype="int64"), pa.int64()))
    arrays += [pa.array(sector, pa.string()), pa.array(subsector, pa.string())]
    return pa.Table.from_arrays(arrays, schema=_layout.BRONZE_SCHEMA)


def _to_table(frame: pd.DataFrame) -> pa.Table:
    """Store-column DataFrame -> bronze table."""
    return _bronze_table(
        frame["date"].to_numpy(),
        [frame[c].to_numpy(dtype="float64") for c in _PRICE_COLUMNS],
        frame["volume"].to_numpy(dtype="int64"),
        *(frame[c].astype(str).tolist() for c in ("sector", "subsector")),
    )


def _source_table(rows: pd.DataFrame, sector: str, subsector: str) -> pa.Table:
    """Normalised source rows (``SOURCE_COLUMNS``) -> bronze table, one sector for all rows."""
    return _bronze_table(
        rows["Date"].to_numpy(),
        [rows[SOURCE_OF[c]].to_numpy(dtype="float64") for c in _PRICE_COLUMNS],
        rows["Volume"].to_numpy(dtype="int64"),
        *([str(text)] * len(rows) for text in (sector, subsector)),
    )


def _days_after(new: pa.Table, old: pa.Table) -> bool:
    """Whether every day of ``new`` comes after every day of ``old`` (both sorted by date)."""
    return bool(pc.greater(pc.min(new["date"]), pc.max(old["date"])).as_py())


def _to_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas(date_as_object=False)
    frame["date"] = frame["date"].astype("datetime64[ns]")
    return frame


@dataclass
class _Deferred:
    every_s: float
    since: float
    pending: bool


class BronzeStore:
    """Raw daily prices under ``root`` (``STORE/bronze/prices`` by default): a folder or S3.

    One writer at a time (see :meth:`writer_lock`); any number of readers, at any moment.
    ``fsync=True`` flushes each local file to disk before it is renamed into place (crash-safe
    across power loss, not only process kills); turn it off for throwaway stores and benchmarks.
    ``verify`` (default: local stores) reads date bounds and row counts from the parquet footers
    (and so finds a damaged file); off, they come from the manifest alone (no object read).
    """

    def __init__(
        self,
        root: Path | str | Location,
        *,
        fsync: bool = True,
        settings: Settings | None = None,
        verify: bool | None = None,
    ) -> None:
        self.location = open_location(root, settings)
        self.root: Path | str = (
            self.location.url if self.location.remote else Path(self.location.path)
        )
        self.fsync = fsync
        self.verify = (not self.location.remote) if verify is None else verify
        self._manifest: dict[str, Any] | None = None
        self._index: dict[str, dict[str, Any]] | None = None
        self._years: dict[str, set[int]] | None = None  # ticker -> years, from the index
        self._unlisted = False  # partitions found on disk that the manifest does not list
        self._deferred: _Deferred | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> BronzeStore:
        return cls(bronze_prices_dir(settings), settings=settings, **kwargs)

    def __repr__(self) -> str:
        return f"BronzeStore({self.location.shown!r})"

    # Paths ------------------------------------------------------------------------------
    @staticmethod
    def partition_name(ticker: str, year: int) -> str:
        """The partition's path relative to the store root (its key in the manifest)."""
        return f"ticker={ticker}/year={year}/{PART_FILE}"

    def ticker_dir(self, ticker: str) -> Path | str:
        if not _TICKER.match(ticker):
            raise DataError(
                f"invalid ticker {ticker!r}: expected 1-32 letters, digits or . _ - ^ "
                "(no '=', '/', '%' or spaces)"
            )
        if self.location.remote:
            return self.location.child(f"ticker={ticker}").url
        return Path(self.location.path) / f"ticker={ticker}"

    def partition_path(self, ticker: str, year: int) -> Path | str:
        """Local path (a :class:`Path`) or ``s3://`` URL of one partition."""
        self.ticker_dir(ticker)
        return (
            self._partition(ticker, year).url
            if self.location.remote
            else Path(self._partition(ticker, year).path)
        )

    def _partition(self, ticker: str, year: int) -> Location:
        return self.location.child(self.partition_name(ticker, year))

    # The index --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Forget the manifest read before (the next question reads it again)."""
        self._manifest = self._index = self._years = None

    def _load(self) -> None:
        manifest = read_manifest(self.location)
        partitions = manifest.get("partitions") if manifest else None
        self._manifest = manifest
        self._years = None
        if isinstance(partitions, dict):
            self._index = {k: v for k, v in partitions.items() if _PARTITION.match(k)}
        else:  # a store written before manifests listed partitions: list it once
            self._index = {name: {} for name in self._list_partitions()}
        self._unlisted = not isinstance(partitions, dict) and bool(self._index)

    def index(self) -> dict[str, dict[str, Any]]:
        """Every visible partition: relative name -> manifest entry (``{}`` when not indexed)."""
        if self._index is None:
            self._load()
        assert self._index is not None
        return self._index

    @property
    def indexed(self) -> bool:
        """True when the manifest lists the partitions (False: an older store, listed). A new,
        empty store is indexed: what it writes enters its manifest."""
        self.index()
        return not self._unlisted

    def _list_partitions(self) -> list[str]:
        fs, base = self.location.fs, self.location.path.rstrip("/")
        try:
            with translated(self.location, "listing"):
                found = fs.glob(f"{base}/ticker=*/year=*/{PART_FILE}")
        except FileNotFoundError:
            return []
        names = []
        for path in found:
            name = str(path)[len(base) + 1 :]
            if _PARTITION.match(name):
                names.append(name)
        return sorted(names)

    def tickers(self) -> list[str]:
        """Tickers that have at least one partition, sorted (from the manifest)."""
        self.refresh()
        return sorted({_PARTITION.match(name).group(1) for name in self.index()})

    def years(self, ticker: str) -> list[int]:
        """Years of the ticker that hold a (complete) partition, ascending (one pass over the
        index for all tickers, kept up to date by the writes: not a scan per call)."""
        self.ticker_dir(ticker)
        if self._years is None:
            found: dict[str, set[int]] = {}
            for name in self.index():
                match = _PARTITION.match(name)
                found.setdefault(match.group(1), set()).add(int(match.group(2)))
            self._years = found
        return sorted(self._years.get(ticker, ()))

    def _listed(self, ticker: str, year: int) -> None:
        """A partition entered the index."""
        if self._years is not None:
            self._years.setdefault(ticker, set()).add(year)

    # Reading ----------------------------------------------------------------------------
    def _bad_file(self, path: Path | str, what: str) -> DataError:
        folder = str(path).rsplit("/", 2)[0]
        return DataError(
            f"bronze file {path} {what}; move it away or delete {folder} "
            "and run `mlfactory data ingest` again to fetch that ticker anew"
        )

    def _read_bytes(self, ticker: str, year: int) -> bytes:
        location = self._partition(ticker, year)
        try:
            return read_bytes(location)
        except OSError as exc:
            path = self.partition_path(ticker, year)
            raise self._bad_file(path, f"cannot be read ({exc})") from None

    def _metadata(self, ticker: str, year: int) -> pq.FileMetaData:
        path = self.partition_path(ticker, year)
        try:
            if self.location.remote:
                with self.location.fs.open(self._partition(ticker, year).path, "rb") as handle:
                    metadata = pq.read_metadata(handle)
            else:
                metadata = pq.read_metadata(path)
            schema = metadata.schema.to_arrow_schema()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._bad_file(path, f"is not a readable parquet file ({exc})") from None
        self._check_schema(path, schema)
        return metadata

    def _check_schema(self, path: Path | str, schema: pa.Schema) -> None:
        if not schema.equals(_layout.BRONZE_SCHEMA, check_metadata=False):
            found = ", ".join(f"{f.name}:{f.type}" for f in schema)
            expected = ", ".join(f"{f.name}:{f.type}" for f in _layout.BRONZE_SCHEMA)
            raise self._bad_file(path, f"has columns ({found}); expected ({expected})")

    def _table_of(self, ticker: str, year: int, data: bytes) -> pa.Table:
        path = self.partition_path(ticker, year)
        try:
            table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)  # small files
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._bad_file(path, f"is not a readable parquet file ({exc})") from None
        self._check_schema(path, table.schema)
        return table

    def read_partition(self, ticker: str, year: int) -> pa.Table:
        """One partition as a table of ``BRONZE_SCHEMA``; :class:`DataError` naming a bad file."""
        return self._table_of(ticker, year, self._read_bytes(ticker, year))

    def _date_bound(self, ticker: str, year: int, which: str) -> date | None:
        """Min or max date of a partition: the manifest's, or the footer statistics (verify)."""
        entry = self.index().get(self.partition_name(ticker, year)) or {}
        if not self.verify and entry.get((which == "max" and "last") or "first"):
            return date.fromisoformat(entry["last" if which == "max" else "first"])
        metadata = self._metadata(ticker, year)
        index = _layout.BRONZE_SCHEMA.get_field_index("date")
        values = []
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_min_max:
                values = None
                break
            values.append(stats.max if which == "max" else stats.min)
        if values is None:
            values = self.read_partition(ticker, year)["date"].to_pylist()
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
            empty = _layout.BRONZE_SCHEMA.insert(0, pa.field("ticker", pa.string()))
            return _to_frame(empty.empty_table())
        frame = _to_frame(pa.concat_tables(tables))
        return frame.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)

    # Writing ----------------------------------------------------------------------------
    def _write_partition(self, table: pa.Table, ticker: str, year: int) -> None:
        sink = io.BytesIO()
        # dictionaries for the repeated text only, statistics for the dates readers filter on:
        # a third less encoding time and ~18% smaller files than pyarrow's defaults
        pq.write_table(
            table, sink, use_dictionary=["sector", "subsector"], write_statistics=["date"]
        )
        data = sink.getvalue()
        write_bytes(self._partition(ticker, year), data, fsync=self.fsync)
        if self.fsync and not self.location.remote:
            _fsync_dir(Path(self._partition(ticker, year).path).parent)
        dates = table.column("date")
        self._listed(ticker, year)
        self.index()[self.partition_name(ticker, year)] = partition_entry(
            data,
            table.num_rows,
            first=str(pc.min(dates).as_py()),
            last=str(pc.max(dates).as_py()),
        )

    def _entry_of(self, ticker: str, year: int, data: bytes, table: pa.Table) -> None:
        """Index a partition found in the store (an older store, or a crash before the
        manifest was written): its entry is computed from the bytes read."""
        dates = table.column("date")
        entry = partition_entry(
            data,
            table.num_rows,
            first=str(pc.min(dates).as_py()) if table.num_rows else None,
            last=str(pc.max(dates).as_py()) if table.num_rows else None,
        )
        name = self.partition_name(ticker, year)
        old = self.index().get(name) or {}
        if old.get("sha256") != entry["sha256"]:
            self.index()[name] = entry
            self._listed(ticker, year)
            self._dirty = True

    def write_ticker(
        self, ticker: str, frame: pd.DataFrame, sector: str = "", subsector: str = ""
    ) -> WriteResult:
        """Merge source rows (``SOURCE_COLUMNS``) into the ticker's year partitions.

        Only the years that receive new or changed rows are rewritten (oldest first, so a crash
        never leaves a gap before the newest stored date); a repeated date takes the new row.
        The manifest is rewritten once the ticker's partitions are written: it lists them.
        """
        self.ticker_dir(ticker)  # validates the name before any work
        if not self.indexed:  # an older store: every partition enters the manifest first
            self._index_unlisted()
        known = set(self.years(ticker))
        created = not known
        if frame.empty:
            return WriteResult(ticker, 0, (), created=False)
        rows = normalise_source_frame(frame, f"rows for {ticker}")
        table = _source_table(rows, sector, subsector)  # sorted: a year is one slice
        year_of = rows["Date"].to_numpy().astype("datetime64[Y]").astype("int64") + 1970
        years, offsets = np.unique(year_of, return_index=True)
        bounds = [*offsets.tolist(), len(rows)]
        added = 0
        written: list[int] = []
        self._dirty = False
        for i, year in enumerate(years.tolist()):
            part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
            if year in known:
                data = self._read_bytes(ticker, year)
                old_table = self._table_of(ticker, year, data)
                self._entry_of(ticker, year, data, old_table)
                if old_table.num_rows and _days_after(part, old_table):
                    # new days after the stored ones (a daily ingest): appended, no merge
                    rows_added = part.num_rows
                    part = pa.concat_tables([old_table, part])
                    self._write_partition(part, ticker, year)
                    added += rows_added
                    written.append(year)
                    continue
                old = _to_frame(old_table)
                new = _to_frame(part)
                kept = old[~old["date"].isin(new["date"])]
                merged = pd.concat([kept, new], ignore_index=True)
                merged = merged.sort_values("date", kind="stable").reset_index(drop=True)
                if merged.equals(old):
                    continue
                part, rows_added = _to_table(merged), len(merged) - len(old)
            else:
                rows_added = part.num_rows
            self._write_partition(part, ticker, year)
            added += rows_added
            written.append(year)
        if written or self._dirty:
            self._manifest_changed()
        if written:
            logger.debug("%s: wrote years %s (+%d rows)", ticker, written, added)
        return WriteResult(ticker, added, tuple(written), created=created and bool(written))

    @contextlib.contextmanager
    def deferred_manifest(self, every_s: float = 30.0) -> Iterator[None]:
        """Within the block, write the manifest at most every ``every_s`` seconds and once at
        the end, instead of after every ticker: its size grows with the store, so writing it per
        ticker made a day's ingest of 500 tickers cost as much as the first one. A partition
        written in the last interval before a crash is not listed (not visible); the next ingest
        fetches its days again and writes it whole."""
        self._deferred = _Deferred(every_s, time.monotonic(), pending=False)
        try:
            yield
        finally:
            pending = self._deferred.pending
            self._deferred = None
            if pending:
                self._save_manifest()

    def _manifest_changed(self) -> None:
        deferred = self._deferred
        if deferred is None or time.monotonic() - deferred.since >= deferred.every_s:
            self._save_manifest()
        else:
            deferred.pending = True

    def _save_manifest(self, info: dict[str, Any] | None = None) -> None:
        if self._deferred is not None:
            self._deferred.pending = False
            self._deferred.since = time.monotonic()
        previous = dict(self._manifest or {})
        previous.pop("partitions", None)
        previous.pop("format", None)
        payload = {**(info if info is not None else previous), "partitions": self.index()}
        write_manifest(self.location, payload, fsync=self.fsync)
        self._manifest = {"format": 2, **payload}

    def _index_unlisted(self) -> int:
        """Writers only: index the partitions of an older store (no partitions in its manifest)
        by reading them once; returns how many were indexed."""
        if self.indexed:
            return 0
        names = list(self.index())
        for name in names:
            match = _PARTITION.match(name)
            ticker, year = match.group(1), int(match.group(2))
            try:
                data = self._read_bytes(ticker, year)
                self._entry_of(ticker, year, data, self._table_of(ticker, year, data))
            except DataError as exc:  # a damaged file stays listed: its ticker fails, named
                logger.warning("%s", exc)
        if names:
            logger.info("indexed %d partition(s) of %s in its manifest", len(names), self)
            self._save_manifest()
        self._unlisted = False
        return len(names)

    # Housekeeping -----------------------------------------------------------------------
    def clean_temp_files(self) -> int:
        """Delete temp files a killed writer left behind; returns how many. Writers only.

        (An object store has none: an object is written whole or not at all.)
        """
        if self.location.remote:
            return 0
        root = Path(self.location.path)
        if not root.is_dir():
            return 0
        removed = 0
        # temp files sit next to their target: the root, ticker=T/ or ticker=T/year=Y/ (a
        # scandir of those folders is ~10x faster than rglob on 12,000 partitions)
        folders = [str(root)]
        for depth in range(3):
            found = []
            for folder in folders:
                with contextlib.suppress(OSError), os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                            if entry.is_file(follow_symlinks=False):
                                Path(entry.path).unlink(missing_ok=True)
                                removed += 1
                        elif (
                            depth < 2
                            and entry.name.startswith(("ticker=", "year="))
                            and entry.is_dir(follow_symlinks=False)
                        ):
                            found.append(entry.path)
            folders = found
        if removed:
            logger.info("removed %d stale temp file(s) under %s", removed, root)
        return removed

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the store's exclusive writer lock (see :mod:`mlfactory.data._lock`)."""
        from mlfactory.data._lock import writer_lock

        self.refresh()
        with writer_lock(self.location, "ingest"):
            yield

    def recorded(self) -> dict[str, Any]:
        """The manifest's fields besides the partitions, as last read (no new read)."""
        self.index()
        skip = ("partitions", "format")
        return {k: v for k, v in (self._manifest or {}).items() if k not in skip}

    def manifest(self) -> dict[str, Any] | None:
        """The manifest: the last recorded ingest and the partitions (``None`` before the first)."""
        self.refresh()
        self.index()
        return self._manifest

    def record_ingest(self, info: dict[str, Any]) -> None:
        """Atomically write the manifest with ``info``, the current UTC time and the index."""
        self.index()
        self._save_manifest(
            {"last_ingest": datetime.now(UTC).isoformat(timespec="seconds"), **info}
        )

    def status(self) -> StoreStatus:
        """Per-ticker date range, partitions, rows and bytes: from the manifest, or from the
        parquet footers when ``verify`` (local stores), which also finds a damaged file."""
        entries = []
        for ticker in self.tickers():
            years = self.years(ticker)
            rows = size = 0
            first = last = None
            error = None
            try:
                for year in years:
                    entry = self.index().get(self.partition_name(ticker, year)) or {}
                    if self.verify or "rows" not in entry:
                        path = self.partition_path(ticker, year)
                        size += (
                            path.stat().st_size
                            if isinstance(path, Path)
                            else int(self.location.fs.size(self._partition(ticker, year).path))
                        )
                        rows += self._metadata(ticker, year).num_rows
                    else:
                        size += int(entry["bytes"])
                        rows += int(entry["rows"])
                if years:
                    first = self._date_bound(ticker, years[0], "min")
                    last = self._date_bound(ticker, years[-1], "max")
            except (DataError, OSError) as exc:
                error = str(exc)
            entries.append(TickerStatus(ticker, first, last, len(years), rows, size, error))
        manifest = self._manifest
        return StoreStatus(self.root, entries, manifest)
