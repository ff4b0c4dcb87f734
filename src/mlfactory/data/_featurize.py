"""Bronze prices -> silver features, one Dask task per few tickers, rewriting only what changed.

The bronze store is partitioned by ticker, so every ticker's history is one independent task:
read its year files in date order, compute the features (:func:`feature_arrays`, the same
arithmetic as :func:`compute_features`), write them atomically. Windows never cross tickers, so
no shuffle is needed; Dask only schedules the tasks (by default forked local processes for a big
build of local stores, else local threads; or a cluster at
``scheduler="tcp://host:8786"`` / ``MLFACTORY_DASK_SCHEDULER_ADDRESS``; the workers must see the
same store: a shared folder or ``s3://…``). A task receives URLs and the storage options (an
endpoint, never a credential): workers read credentials from their own environment, so nothing
secret enters the task graph.

Silver is cut in blocks of consecutive years, ``ticker=T/part-FIRST-LAST-HASH.parquet``
(:func:`full_layout`: a fresh build puts every year but the last in one block and the last year
in its own; a later year gets its own block). Each block records in the silver manifest (and in
its parquet metadata) the content hashes of its own bronze years, digests of the rows it looks
back to (the largest window) and ahead to (``horizon`` days, for the target), and the feature
parameters. The client compares the block's own bronze hashes with the bronze manifest: a
ticker with no stale block is skipped without a task, an object read or a listing. A task
rebuilds its stale blocks from their bronze years plus the context rows on each side, and adds
a neighbouring block whose context rows changed (the first days of a new year complete the
previous year's last targets), so the store always equals a full rebuild, value for value. A
new trading day rewrites one block per ticker (two on the first days of a year). The silver
manifest is written once the tasks are done: a block becomes visible to readers of the manifest
then. A store of the older one-file-per-ticker layout is read as it is and rebuilt in blocks by
the next featurize.

Each block also records its tail (its last ``max(windows)`` adjusted closes and last close):
when the block before the stale ones is unchanged, a task takes its lookback from that tail
instead of reading the previous year's bronze. On the local schedulers a task runs several
tickers in turn (a new day's ticker costs about what Dask spends scheduling a task).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlfactory._gc import gc_paused
from mlfactory.data._arrow import (
    date_days,
    flag_array,
    float_array,
    float_values,
    index_array,
    jemalloc_pool,
)
from mlfactory.data._bronze import BronzeStore
from mlfactory.data._delta import SilverDelta, delta_from_manifest, rows_digest
from mlfactory.data._features import DEFAULT_WINDOWS, feature_arrays, validate_feature_params
from mlfactory.data._layout import (
    BRONZE_SCHEMA,
    SILVER_LEGACY_FILE,
    bronze_prices_dir,
    parse_silver_name,
    silver_block_name,
    silver_features_dir,
    silver_files_by_ticker,
)
from mlfactory.data._manifest import (
    manifest_bytes,
    now_text,
    parse_manifest,
    partition_entry,
    write_manifest,
)
from mlfactory.exceptions import ConfigError, DataError, MlfactoryError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings
from mlfactory.storage import (
    Location,
    delete,
    is_remote,
    location_from,
    open_location,
    read_bytes,
    translated,
    write_bytes,
)

__all__ = [
    "LOCAL_SCHEDULERS",
    "FeaturizeReport",
    "TickerResult",
    "bronze_tickers",
    "featurize",
    "featurize_ticker",
]

logger = get_logger(__name__)

LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")
DEFAULT_SCHEDULER = "threads"
# Tickers to build from which the default local scheduler is processes (see _default_scheduler).
PROCESSES_MIN_TASKS = 32
# Threads per core of the local scheduler: one. A full build of 500 tickers x 24 years from the
# CLI took 6.1-6.5 s with one thread per core against 8.1-8.6 s with four (more threads only
# contend for the interpreter lock around each of the 12,000 small file reads; quiet 2-core
# machine, 2026-12-02). New days no longer go through the scheduler (see _append).
THREADS_PER_CORE = 1
METADATA_KEY = b"mlfactory.features"
FEATURES_VERSION = 2  # 2: year blocks with their context digests
# Price floats barely compress (snappy saves ~17%); uncompressed files write ~25% and read ~30%
# faster (measured in benchmarks/features.py), and silver can always be rebuilt from bronze.
COMPRESSION = "none"
# Dictionary-encode only the repeated text; for prices it costs time and saves nothing.
DICTIONARY_COLUMNS = ["sector", "subsector"]
# Min/max statistics where readers filter (dates); the others cost write time for nothing.
STATISTICS_COLUMNS = ["date"]

Status = Literal["written", "skipped", "failed"]


@dataclass(frozen=True)
class TickerResult:
    """What happened to one ticker."""

    ticker: str
    status: Status
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    # blocks written: (first year, last year) -> manifest entry
    entries: dict | None = field(default=None, repr=False, compare=False)
    # a layout built anew: the ticker's other silver files are dropped
    layout: tuple | None = field(default=None, repr=False, compare=False)
    # new days appended to the delta instead (mlfactory.data._append.Appended)
    appended: object | None = field(default=None, repr=False, compare=False)

    @property
    def blocks_written(self) -> int:
        return len(self.entries or {})


@dataclass
class FeaturizeReport:
    """Outcome of :func:`featurize`: one :class:`TickerResult` per ticker, sorted by ticker."""

    silver_dir: Path | str
    windows: tuple[int, ...]
    horizon: int
    scheduler: str
    seconds: float = 0.0
    results: list[TickerResult] = field(default_factory=list)

    @property
    def written(self) -> list[TickerResult]:
        return [r for r in self.results if r.status == "written"]

    @property
    def skipped(self) -> list[TickerResult]:
        return [r for r in self.results if r.status == "skipped"]

    @property
    def failures(self) -> list[TickerResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def rows_written(self) -> int:
        return sum(r.rows for r in self.written)

    @property
    def blocks_written(self) -> int:
        """Year blocks written (new days usually go to the delta instead: none)."""
        return sum(r.blocks_written for r in self.written)

    @property
    def appended(self) -> list[TickerResult]:
        """Tickers whose new days went to the delta file (their blocks are untouched)."""
        return [r for r in self.written if r.appended is not None]

    @property
    def ok(self) -> bool:
        return not self.failures


# Reading bronze ----------------------------------------------------------------------------


def _is_data_file(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith((".", "_"))


@dataclass(frozen=True)
class _SourceFile:
    year: int
    name: str  # relative to the ticker folder, e.g. year=2024/part-0.parquet
    path: str  # a local path or an s3:// URL
    token: str  # what says the bytes changed: the manifest's SHA-256, else size:mtime / ETag
    rows: int | None = None  # from the bronze manifest (None: read the file to know)


def _year_files(ticker_dir: Location) -> list[_SourceFile]:
    """The ticker's parquet files found by listing its folder (a store without a manifest)."""
    found: list[_SourceFile] = []
    fs, base = ticker_dir.fs, ticker_dir.path.rstrip("/")
    with translated(ticker_dir, "listing"):
        try:
            entries = fs.ls(base, detail=True)
        except FileNotFoundError:
            return []
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] != "directory" or not name.startswith("year="):
            continue
        try:
            year = int(name.removeprefix("year="))
        except ValueError:
            raise DataError(
                f"unexpected folder {ticker_dir.child(name)}: expected year=YYYY inside "
                f"{ticker_dir}"
            ) from None
        with translated(ticker_dir, "listing"):
            files = fs.ls(f"{base}/{name}", detail=True)
        for file in files:
            file_name = file["name"].rsplit("/", 1)[-1]
            if file["type"] == "file" and _is_data_file(file_name):
                relative = f"{name}/{file_name}"
                token = file.get("ETag") or f"{file.get('size')}:{file.get('mtime', '')}"
                if not ticker_dir.remote:
                    stat = os.stat(file["name"])
                    token = f"{stat.st_size}:{stat.st_mtime_ns}"
                found.append(_SourceFile(year, relative, ticker_dir.child(relative).url, token))
    return sorted(found, key=lambda f: (f.year, f.name))


Block = tuple[int, int]  # first and last year of a silver block (inclusive)


def block_file(first: int, last: int, version: str = "") -> str:
    """A block's file name inside its ticker folder."""
    return silver_block_name("_", first, last, version).split("/", 1)[1]


def _block_years(block: Block, files: list[_SourceFile]) -> list[_SourceFile]:
    return [f for f in files if block[0] <= f.year <= block[1]]


_PLAIN_JSON = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but " and \: JSON as it is


def _sources_digest(files: list[_SourceFile]) -> str:
    """What a block is built from in its own years: each bronze partition's name and content
    (the SHA-256 of their compact JSON; written out directly when no text needs escaping, the
    usual case: json.dumps was 6% of a new day's featurize)."""
    pairs = [(f.name, f.token) for f in files]
    if all(_PLAIN_JSON.fullmatch(text) for pair in pairs for text in pair):
        text = "[" + ",".join(f'["{name}","{token}"]' for name, token in pairs) + "]"
    else:
        text = json.dumps([list(pair) for pair in pairs], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _params(windows, horizon) -> dict:
    return {"version": FEATURES_VERSION, "windows": list(windows), "horizon": horizon}


def full_layout(years: list[int]) -> list[Block]:
    """Blocks of a fresh build: every year but the last in one block, the last year alone (so a
    new day rewrites one year of the ticker, and a full build writes two files)."""
    years = sorted(years)
    if len(years) <= 1:
        return [(y, y) for y in years]
    return [(years[0], years[-2]), (years[-1], years[-1])]


def plan_ticker(
    files: list[_SourceFile],
    recorded: dict[Block, dict] | None,
    windows,
    horizon: int,
    force: bool = False,
) -> tuple[list[Block], set[Block], bool]:
    """``(layout, stale blocks, fresh)`` from the manifests alone (no data read).

    ``recorded``: the ticker's silver blocks and their fingerprints (``None``: no usable silver,
    e.g. the older one-file layout). A block is stale when one of its own bronze partitions
    changed, or it is new (years no block covers get a block each). ``fresh``: the layout is
    built anew (nothing recorded, other parameters, a bronze year gone): every block is stale and
    files of the ticker outside the layout are deleted. Blocks next to a stale one may also change
    (lookback rows, the target's days ahead): :func:`featurize_ticker` finds them from the data.
    """
    years = sorted({f.year for f in files})
    params = _params(windows, horizon)
    usable = bool(recorded) and all(
        {k: fp.get(k) for k in params} == params
        and fp.get("years") == list(block)
        and _block_years(block, files)
        for block, fp in recorded.items()
    )
    if not usable:
        layout = full_layout(years)
        return layout, set(layout), True
    assert recorded is not None
    layout = sorted(recorded)
    covered = {f.year for block in layout for f in _block_years(block, files)}
    layout = sorted([*layout, *((y, y) for y in years if y not in covered)])
    if any(a[1] >= b[0] for a, b in itertools.pairwise(layout)):  # overlapping
        layout = full_layout(years)
        return layout, set(layout), True
    if force:
        return layout, set(layout), False
    stale = {
        block
        for block in layout
        if block not in recorded
        or recorded[block].get("sources") != _sources_digest(_block_years(block, files))
    }
    return layout, stale, False


def _context_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for values in arrays:
        digest.update(np.ascontiguousarray(values).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:32]


def _read_bronze_file(path: str, options: dict) -> pa.Table:
    try:
        if is_remote(path):
            data = read_bytes(location_from(path, options))
        else:  # the bytes, then parsed: half the time of a memory map here (its page faults)
            with open(path, "rb") as handle:
                data = handle.read()
        # in memory already: nothing to pre-buffer (-8% a file). Single-threaded per file:
        # files are small, the parallelism is across tickers.
        file = pq.ParquetFile(pa.BufferReader(data), pre_buffer=False)
        table = file.read(use_threads=False)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read bronze file {path}: {exc}") from exc
    if table.schema.equals(BRONZE_SCHEMA):
        return table
    missing = [name for name in BRONZE_SCHEMA.names if name not in table.column_names]
    if missing:
        raise DataError(
            f"bronze file {path} lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(BRONZE_SCHEMA.names)}"
        )
    try:
        return table.select(BRONZE_SCHEMA.names).cast(BRONZE_SCHEMA)
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(
            f"bronze file {path} does not match the bronze schema ({exc}); expected {BRONZE_SCHEMA}"
        ) from exc


def _days(table: pa.Table) -> np.ndarray:
    """The ``date`` column as days since 1970-01-01 (int32 arithmetic: no pandas involved)."""
    column = table.column("date")
    if column.null_count == 0 and column.type == pa.date32():  # int32 views, no cast or copy
        return date_days(column)
    return column.cast(pa.int32()).to_numpy()


def _sorted_by_date(table: pa.Table, ticker_dir: object) -> pa.Table:
    days = _days(table)
    steps = np.diff(days)
    if (steps > 0).all():
        return table
    order = np.argsort(days, kind="stable")
    days = days[order]
    repeated = np.diff(days) == 0
    if repeated.any():
        shown = ", ".join(str(d) for d in days[1:][repeated][:5].astype("datetime64[D]"))
        raise DataError(f"{ticker_dir} has duplicate dates ({shown}); expected one row per day")
    return table.take(index_array(order))


# Writing silver ----------------------------------------------------------------------------


def _features_table(
    prices: pa.Table, windows, horizon: int, prefix: tuple[np.ndarray, np.ndarray] | None = None
) -> pa.Table:
    """``prefix``: ``(adj_close, close)`` of context rows before ``prices`` (a block's tail
    from the manifest), seen by the lookback and left out of the result."""

    def floats(name: str) -> np.ndarray:
        return float_values(prices.column(name))

    high, low, close, adj = floats("high"), floats("low"), floats("close"), floats("adj_close")
    skip = 0
    if prefix is not None:
        skip = len(prefix[0])
        blank = np.full(skip, np.nan)
        high, low = np.concatenate([blank, high]), np.concatenate([blank, low])
        close, adj = np.concatenate([prefix[1], close]), np.concatenate([prefix[0], adj])
    arrays = feature_arrays(high, low, close, adj, windows, horizon)
    columns = list(prices.columns)
    names = list(prices.column_names)
    for name, (values, null_mask) in arrays.items():
        if skip:
            values = values[skip:]
            null_mask = None if null_mask is None else null_mask[skip:]
        if null_mask is None:
            columns.append(float_array(values))
        else:
            columns.append(flag_array(values, null_mask))
        names.append(name)
    return pa.Table.from_arrays(columns, names=names)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression=COMPRESSION,
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=STATISTICS_COLUMNS,
    )
    return sink.getvalue()


def _check_years(prices: pa.Table, years: list[int], counts: list[int], ticker_dir) -> None:
    """Every row sits in the year partition of its date (blocks are cut by year)."""
    days = _days(prices).astype("datetime64[D]")
    found = days.astype("datetime64[Y]").astype(np.int64) + 1970
    expected = np.repeat(np.asarray(years, dtype=np.int64), counts)
    if not np.array_equal(found, expected):
        wrong = int(np.flatnonzero(found != expected)[0])
        raise DataError(
            f"{ticker_dir}/year={expected[wrong]} holds {days[wrong]}, a day of another year; "
            "expected each year partition to hold that year's days only"
        )


def featurize_ticker(
    ticker: str,
    bronze_ticker_dir: str | Path,
    silver_ticker_dir: str | Path,
    windows: Iterable[int] = DEFAULT_WINDOWS,
    horizon: int = 1,
    force: bool = False,
    *,
    sources: list[tuple] | None = None,
    options: dict | None = None,
    recorded: list[tuple[int, int, dict]] | None = None,
    plan: tuple[list[Block], set[Block], bool] | None = None,
) -> TickerResult:
    """Build the ticker's stale silver blocks; failures are returned, not raised.

    Runs on a Dask worker: it gets URLs, the bronze partitions (``sources``: year, name, URL,
    content token, rows, from the bronze manifest), the ticker's ``recorded`` silver blocks
    (first year, last year, fingerprint, from the silver manifest) and the storage ``options``
    (an endpoint, never a credential: the worker's environment has those). Without ``sources``
    the ticker's folder is listed. It reads the bronze years of the stale blocks plus enough rows
    on each side for the lookback (largest window) and the target (``horizon`` days ahead),
    computes the features on that span and writes each stale block whole. A block next to the
    span whose context rows changed (new first days of a year change the previous year's last
    targets) is added and the span widened, until no neighbour changes: the blocks written are
    then equal, value for value, to a full rebuild. The result carries the manifest entry of
    every block written.
    """
    started = time.perf_counter()
    options = options or {}
    bronze = _location(str(bronze_ticker_dir), options)
    silver = _location(str(silver_ticker_dir), options)
    try:
        clean_windows, horizon = validate_feature_params(windows, horizon)
        files = _year_files(bronze) if sources is None else [_SourceFile(*s) for s in sources]
        if not files:
            raise DataError(f"no parquet files under {bronze}; expected year=YYYY/part-0.parquet")
        known = {(a, b): fp for a, b, fp in recorded} if recorded else None
        if plan is None:  # the client plans when it knows the sources (the manifest)
            plan = plan_ticker(files, known, clean_windows, horizon, force)
        layout, stale, fresh = plan
        if not stale:
            return TickerResult(ticker, "skipped", 0, time.perf_counter() - started)
        entries, rows = _build_blocks(
            files, layout, stale, known or {}, clean_windows, horizon, bronze, silver, options
        )
    except (MlfactoryError, OSError) as exc:
        message = str(exc) if isinstance(exc, MlfactoryError) else f"{bronze}: {exc}"
        return TickerResult(ticker, "failed", 0, time.perf_counter() - started, message)
    return TickerResult(
        ticker,
        "written",
        rows,
        time.perf_counter() - started,
        entries=entries,
        layout=tuple(layout) if fresh else None,
    )


def _location(url: str, options: dict) -> Location:
    """A task's folder: an absolute local path is taken as it is (the client resolved it; a
    resolve per task costs syscalls), anything else as :func:`location_from` makes it."""
    if not is_remote(url) and not url.startswith("file://") and os.path.isabs(url):
        return Location(url, url, {})
    return location_from(url, options)


@dataclass
class _Span:
    """Consecutive bronze years of one ticker, loaded and sorted, with each year's rows."""

    prices: pa.Table
    starts: dict[int, int]  # year -> first row
    ends: dict[int, int]  # year -> one past its last row
    at_start: bool  # the span begins with the ticker's first year
    at_end: bool  # ... and ends with its last
    lookback: int
    horizon: int
    # (adj_close, close) of the rows before the first year, from the previous block's tail
    # (starts and ends count these rows too); None: the span begins with its first year
    prefix: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        def floats(name: str) -> np.ndarray:
            return float_values(self.prices.column(name))

        self.adj, self.close = floats("adj_close"), floats("close")
        self.skip = 0
        if self.prefix is not None:
            self.skip = len(self.prefix[0])
            self.adj = np.concatenate([self.prefix[0], self.adj])
            self.close = np.concatenate([self.prefix[1], self.close])

    def tail(self, end: int) -> str:
        """The context a block ending at ``end`` gives the next one: its last ``lookback``
        adj_close values and last close, as the float64 bytes in base64."""
        values = np.concatenate(
            [self.adj[max(0, end - self.lookback) : end], self.close[end - 1 : end]]
        )
        return base64.b64encode(values.astype("<f8").tobytes()).decode("ascii")

    def before(self, start: int) -> str | None:
        """Digest of what rows from ``start`` on see before them (``None``: not loaded)."""
        if start < self.lookback and not self.at_start:
            return None
        return _context_digest(
            self.adj[max(0, start - self.lookback) : start], self.close[max(0, start - 1) : start]
        )

    def after(self, end: int) -> str | None:
        """Digest of the rows the targets before ``end`` look ahead to (``None``: not loaded)."""
        if end + self.horizon > len(self.adj) and not self.at_end:
            return None
        return _context_digest(self.adj[end : end + self.horizon])

    def changed(self, years: list[int], fingerprint: dict) -> bool:
        """Whether a block of these years, not rebuilt, now sees other context rows."""
        if years[0] in self.starts:
            found = self.before(self.starts[years[0]])
            if found is not None and found != fingerprint.get("before"):
                return True
        if years[-1] in self.ends:
            found = self.after(self.ends[years[-1]])
            if found is not None and found != fingerprint.get("after"):
                return True
        return False


def decode_tail(
    fingerprint: dict, lookback: int, at_start: bool
) -> tuple[tuple[np.ndarray, np.ndarray], bool] | None:
    """A block's recorded tail as the next block's prefix ``(adj_close, close)``, and whether
    the prefix begins with the ticker's first row (``None``: not recorded, or too short)."""
    text = fingerprint.get("tail")
    if not isinstance(text, str):
        return None
    try:
        values = np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)
    except ValueError:
        return None
    if len(values) < 2 or (len(values) - 1 < lookback and not at_start):
        return None
    adj, close = values[:-1], np.full(len(values) - 1, np.nan)
    close[-1] = values[-1]
    return (adj, close), at_start and len(values) - 1 < lookback


def _build_blocks(
    files: list[_SourceFile],
    layout: list[Block],
    stale: set[Block],
    known: dict[Block, dict],
    windows: tuple[int, ...],
    horizon: int,
    bronze: Location,
    silver: Location,
    options: dict,
) -> tuple[dict[Block, dict], int]:
    files = sorted(files, key=lambda f: (f.year, f.name))
    years = [f.year for f in files]
    lookback = max(windows)  # adj_close rows a row's features reach back (close: 1)
    pad = max(lookback, horizon)
    tables: dict[int, pa.Table] = {}

    def table(i: int) -> pa.Table:
        if i not in tables:
            tables[i] = _read_bronze_file(files[i].path, options)
        return tables[i]

    def rows(i: int) -> int:
        return files[i].rows if files[i].rows is not None else table(i).num_rows

    def load(lo: int, hi: int, prefix=None, prefix_at_start: bool = False) -> _Span:
        chosen_years = years[lo : hi + 1]
        prices = _sorted_by_date(pa.concat_tables([table(i) for i in range(lo, hi + 1)]), bronze)
        counts = [table(i).num_rows for i in range(lo, hi + 1)]
        _check_years(prices, chosen_years, counts, bronze)
        skip = 0 if prefix is None else len(prefix[0])
        offsets = (np.cumsum([0, *counts]) + skip).tolist()
        return _Span(
            prices,
            dict(zip(chosen_years, offsets[:-1], strict=True)),
            dict(zip(chosen_years, offsets[1:], strict=True)),
            lo == 0 or prefix_at_start,
            hi == len(files) - 1,
            lookback,
            horizon,
            prefix,
        )

    def recorded_tail(lo: int) -> tuple[Block, tuple[np.ndarray, np.ndarray], bool] | None:
        """The unchanged block ending just before year index ``lo`` and its recorded tail
        (the span then need not read that block's bronze), or None."""
        if lo == 0:
            return None
        previous = next((b for b in layout if b[1] == years[lo - 1]), None)
        if previous is None or previous in chosen:
            return None
        found = decode_tail(known.get(previous, {}), lookback, previous[0] == years[0])
        return None if found is None else (previous, *found)

    chosen = set(stale)
    while True:  # widen until no neighbouring block sees other context rows
        lo = years.index(min(_block_years(b, files)[0].year for b in chosen))
        hi = years.index(max(_block_years(b, files)[-1].year for b in chosen))
        before = after = 0
        while hi < len(files) - 1 and after < pad:
            hi += 1
            after += rows(hi)
        tail = recorded_tail(lo)
        grown = set()
        if tail is not None:  # one bronze read less: the previous block's tail is its context
            previous, prefix, prefix_at_start = tail
            span = load(lo, hi, prefix, prefix_at_start)
            found = span.after(span.skip)  # what the previous block's targets look ahead to
            if found is None or found != known[previous].get("after"):
                grown.add(previous)
        if tail is None or grown:
            while lo > 0 and before < pad:
                lo -= 1
                before += rows(lo)
            span = load(lo, hi)
            grown = set()
        grown |= {
            block
            for block in layout
            if block not in chosen
            and span.changed([f.year for f in _block_years(block, files)], known.get(block, {}))
        }
        if not grown:
            break
        chosen |= grown

    features = _features_table(span.prices, windows, horizon, span.prefix)
    entries: dict[Block, dict] = {}
    written, now = 0, now_text()
    for block in sorted(chosen):
        own = _block_years(block, files)
        start, end = span.starts[own[0].year], span.ends[own[-1].year]
        fingerprint = {
            **_params(windows, horizon),
            "years": list(block),
            "sources": _sources_digest(own),
            "before": span.before(start),
            "after": span.after(end),
            "tail": span.tail(end),  # the next block's lookback, so it need not read this one
        }
        if block[1] == years[-1]:  # the last block: a new day may append to the delta instead
            bronze_rows = span.prices.slice(start - span.skip, end - start)
            fingerprint.update(count=end - start, digest=rows_digest(bronze_rows, end - start))
        # ``features`` holds the loaded rows only, not the prefix
        part = features.slice(start - span.skip, end - start).replace_schema_metadata(
            {METADATA_KEY: json.dumps(fingerprint).encode()}
        )
        data = _parquet_bytes(part)
        entry = partition_entry(data, part.num_rows, written=now, fingerprint=fingerprint)
        name = block_file(*block, entry["sha256"][:8])
        write_bytes(silver.child(name), data)
        entries[block] = {**entry, "file": name}
        written += part.num_rows
    return entries, written


# Orchestration -----------------------------------------------------------------------------


def bronze_tickers(bronze_dir: Path | str) -> list[str]:
    """Tickers present in the bronze store (from its manifest), sorted."""
    return BronzeStore(bronze_dir).tickers()


def _manifest_sources(store: BronzeStore) -> dict[str, list[tuple]] | None:
    """Every ticker's bronze partitions from the manifest, in one pass: ``(year, name, URL,
    SHA-256, rows)`` (``None``: an older store, not indexed; a ticker is left out when one of
    its partitions lacks a hash)."""
    if not store.indexed:
        return None
    found: dict[str, list[tuple]] = {}
    broken: set[str] = set()
    base = store.location.url.rstrip("/")
    for name, entry in store.index().items():
        ticker, relative = name.split("/", 1)
        ticker = ticker.removeprefix("ticker=")
        if not entry.get("sha256"):
            broken.add(ticker)
            continue
        year = int(relative.split("/", 1)[0].removeprefix("year="))
        rows = entry.get("rows")
        found.setdefault(ticker, []).append(
            (year, relative, f"{base}/{name}", entry["sha256"], None if rows is None else int(rows))
        )
    return {t: sorted(v) for t, v in found.items() if t not in broken}


def _recorded_blocks(names: list[str], partitions: dict) -> list[tuple[int, int, dict]] | None:
    """The ticker's silver blocks and fingerprints (``None``: the older layout, or unlisted)."""
    out = []
    for name in names:
        _, first, last = parse_silver_name(name) or (None, None, None)
        fingerprint = (partitions.get(name) or {}).get("fingerprint")
        if first is None or not isinstance(fingerprint, dict):
            return None
        out.append((first, last, fingerprint))
    return out


def _select_tickers(available: list[str], wanted: Iterable[str] | None, bronze_dir: str):
    if not available:
        raise DataError(
            f"no bronze prices in {bronze_dir}; run `mlfactory data ingest` first "
            "(e.g. `mlfactory data ingest --source synthetic`)"
        )
    if wanted is None:
        return available
    chosen = sorted({t.strip() for t in wanted if t.strip()})
    unknown = [t for t in chosen if t not in set(available)]
    if unknown:
        shown = ", ".join(available[:20]) + (" …" if len(available) > 20 else "")
        raise DataError(
            f"unknown ticker(s) {', '.join(unknown)}: the bronze store {bronze_dir} holds "
            f"{len(available)} ticker(s): {shown}"
        )
    if not chosen:
        raise DataError("no tickers given; pass ticker symbols or omit them to featurize all")
    return chosen


def _resolve_scheduler(scheduler: str | None, settings: Settings | None) -> str | None:
    """The scheduler asked for, or None: chosen by :func:`_default_scheduler` once the work
    is known."""
    chosen = scheduler or (settings.dask_scheduler_address if settings else None)
    if chosen is None or not chosen.strip():
        return None
    chosen = chosen.strip()
    if chosen in LOCAL_SCHEDULERS or "://" in chosen:
        return chosen
    raise ConfigError(
        f"invalid Dask scheduler {chosen!r}: expected one of {', '.join(LOCAL_SCHEDULERS)} "
        "or a scheduler address such as tcp://10.0.0.5:8786"
    )


def _default_scheduler(tasks: int, remote: bool) -> str:
    """Forked processes for a big build of local stores, threads otherwise.

    A ticker's task holds the interpreter lock for much of its work (opening ~24 small bronze
    files, encoding its blocks), so threads barely overlap: 500 tickers x 24 years took 6.0-6.4 s
    from the CLI with two threads, 3.6-4.2 s with two forked processes (2-core machine,
    2026-12-02). A fork costs milliseconds, but a small build gains nothing from it, and on an
    object store the tasks mostly wait on the network, which threads overlap. Only a fork: any
    other way to start a worker imports the stack again (~0.4 s) and runs the caller's main
    script again (a script without ``if __name__ == "__main__"`` would featurize again).
    """
    cores = os.cpu_count() or 1
    if remote or cores < 2 or tasks < PROCESSES_MIN_TASKS or not _forkable():
        return DEFAULT_SCHEDULER
    return "processes"


def _forkable() -> bool:
    """Whether a fork may start this process's workers: on Linux (fork is its safe default),
    with no other thread running (a fork copies the locks other threads hold: the child could
    wait on one forever; the CLI's progress bar runs no thread for this), not a daemon (a Dask
    worker's process may have no children), with the semaphores a pool needs (AWS Lambda has
    none)."""
    import multiprocessing
    import sys
    import threading

    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    if multiprocessing.current_process().daemon:
        return False
    try:
        import multiprocessing.synchronize  # fails without sem_open
    except ImportError:
        return False
    return True


ProgressCallback = Callable[[TickerResult, int, int], None]


# Tasks per local worker: a task runs several tickers (a new day's ticker takes ~2 ms, about
# what Dask spends scheduling a task), yet enough tasks remain to balance the workers.
TASKS_PER_WORKER = 4


class _Batch:
    """featurize_ticker calls as one object (not a list, dict or dataclass Dask traverses)."""

    __slots__ = ("calls",)

    def __init__(self, calls: list[tuple[tuple, dict]]) -> None:
        self.calls = calls

    def run(self) -> list[TickerResult]:
        return [featurize_ticker(*args, **kwargs) for args, kwargs in self.calls]


def _batches(tasks: list, workers: int) -> list[_Batch]:
    count = max(1, min(len(tasks), TASKS_PER_WORKER * workers))
    size = -(-len(tasks) // count)
    return [_Batch(tasks[i : i + size]) for i in range(0, len(tasks), size)]


def _local_get(scheduler: str) -> Callable:
    if scheduler == "threads":
        from dask.threaded import get
    elif scheduler == "processes":
        from dask.multiprocessing import get
    else:
        from dask.local import get_sync as get
    return get


def _process_pool(workers: int):
    """A pool of worker processes started safely and fast.

    ``fork`` when :func:`_forkable` (a worker starts in milliseconds, every module already
    imported); else, for ``scheduler="processes"`` asked for, a ``forkserver`` that imported
    this module once (a fresh single-threaded process forks the workers); ``spawn`` where
    neither exists. Dask's own default is ``spawn``: each worker then imports numpy, pyarrow
    and mlfactory again (~0.5 s each).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    if _forkable():
        context = multiprocessing.get_context("fork")
    elif "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context)


def _run_local(
    tasks, scheduler: str, progress: ProgressCallback | None, done: int, total: int
) -> list[TickerResult]:
    import contextlib
    from concurrent.futures.process import BrokenProcessPool

    import dask
    from dask.callbacks import Callback

    def _posttask(key, result, dsk, state, worker_id) -> None:
        nonlocal done
        if not isinstance(result, list) or progress is None:
            return
        for one in result:
            if isinstance(one, TickerResult):
                done += 1
                progress(one, done, total)

    cores = os.cpu_count() or 1
    workers = THREADS_PER_CORE * cores if scheduler == "threads" else cores
    # One opaque argument per task: Dask does not walk it looking for collections.
    delayed = [dask.delayed(_Batch.run, pure=False)(b) for b in _batches(tasks, workers)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(Callback(posttask=_posttask))
        # the scheduler's function, not its name: a name makes Dask import distributed (0.25 s)
        extra: dict = {}
        if scheduler == "threads":  # its own pool, shut after: Dask keeps its pools' threads
            # alive, and a process with another thread running may no longer fork workers
            from concurrent.futures import ThreadPoolExecutor

            threads = ThreadPoolExecutor(workers, thread_name_prefix="featurize")
            stack.callback(threads.shutdown)
            extra = {"pool": threads}
        elif scheduler == "processes":
            pool = _process_pool(min(workers, len(delayed)))
            stack.callback(pool.shutdown)
            # one task at a time: Dask hands a process 6 at once by default (one worker then
            # took the last 6 of 8 tasks while the other waited)
            extra = {"pool": pool, "chunksize": 1}
        try:
            batches = dask.compute(*delayed, scheduler=_local_get(scheduler), **extra)
        except BrokenProcessPool as exc:
            raise DataError(
                f"a featurize worker process died ({exc}): killed, or out of memory? Nothing "
                "was recorded; run featurize again (--scheduler threads keeps it in one process)"
            ) from None
    return [result for batch in batches for result in batch]


def _run_distributed(
    tasks, address: str, progress: ProgressCallback | None, done: int, total: int
) -> list[TickerResult]:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address} ({exc}); check "
            "MLFACTORY_DASK_SCHEDULER_ADDRESS or --scheduler"
        ) from None
    try:
        futures = [client.submit(featurize_ticker, *args, pure=False, **kw) for args, kw in tasks]
        results = []
        for done_now, future in enumerate(as_completed(futures, loop=client.loop), start=done + 1):
            result = future.result()
            results.append(result)
            if progress is not None:
                progress(result, done_now, total)
        return results
    finally:
        client.close()


def _list_silver(silver: Location) -> list[str]:
    """Silver data files found by listing (a store written before manifests listed them)."""
    base = silver.path.rstrip("/")
    try:
        with translated(silver, "listing"):
            found = silver.fs.glob(f"{base}/ticker=*/*.parquet")
    except FileNotFoundError:
        return []
    names = (str(p)[len(base) + 1 :] for p in found)
    return sorted(n for n in names if parse_silver_name(n) is not None)


def _record(
    silver: Location,
    manifest: dict | None,
    partitions: dict,
    by_ticker: dict[str, list[str]],
    results: list[TickerResult],
    windows: tuple[int, ...],
    horizon: int,
    indexed: bool,
    delta: SilverDelta | None = None,
    new_rows: pa.Table | None = None,
) -> None:
    """Write the silver manifest listing the blocks written and the delta, then delete the
    files they replaced (readers of the manifest never see them go)."""
    from mlfactory.data._append import record_delta

    changed: dict[str, dict] = {}
    dropped: list[str] = []
    rewritten: set[str] = set()  # tickers whose delta block was rewritten
    for result in results:
        if not result.entries:
            continue
        extended = (delta.tickers.get(result.ticker) or {}).get("block") if delta else None
        if extended and (parse_silver_name(extended) or ())[1:] in result.entries:
            rewritten.add(result.ticker)
        written: dict[tuple, str] = {}
        for block, entry in result.entries.items():
            entry = dict(entry)
            name = f"ticker={result.ticker}/{entry.pop('file')}"
            changed[name] = entry
            written[block] = name
        for name in by_ticker.get(result.ticker, []):
            _, first, last = parse_silver_name(name) or (None, None, None)
            replaced = (first, last) in written and written[(first, last)] != name
            if replaced or (result.layout is not None and name not in written.values()):
                dropped.append(name)
    partitions.update(changed)
    for name in dropped:
        partitions.pop(name, None)
    appended = [r.appended for r in results if r.appended is not None]
    old_delta = record_delta(silver, partitions, delta, appended, new_rows, rewritten)
    if old_delta is not None:
        dropped.append(old_delta)
    if not changed and not dropped and not appended and indexed:
        return
    info = {k: v for k, v in (manifest or {}).items() if k not in ("partitions", "format")}
    info.update(last_featurize=now_text(), windows=list(windows), horizon=horizon)
    write_manifest(silver, {**info, "partitions": dict(sorted(partitions.items()))})
    _delete_all([silver.child(name) for name in dropped])  # the manifest no longer lists them


def _delete_all(locations: list[Location]) -> None:
    """Delete files in a few threads: an unlink waits on the filesystem's journal (and a
    DELETE on the network), not on the interpreter (a new day deletes one block per ticker)."""
    if len(locations) <= 1:
        for location in locations:
            delete(location)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(locations))) as pool:
        list(pool.map(delete, locations))


@gc_paused()
@jemalloc_pool()
def featurize(
    settings: Settings | None = None,
    *,
    bronze_dir: Path | str | None = None,
    silver_dir: Path | str | None = None,
    tickers: Iterable[str] | None = None,
    windows: Iterable[int] = DEFAULT_WINDOWS,
    horizon: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    compact: bool = False,
    progress: ProgressCallback | None = None,
) -> FeaturizeReport:
    """Compute silver features for every (or the given) bronze ticker with Dask.

    ``scheduler``: ``threads`` (default), ``processes``, ``synchronous`` or a Dask scheduler
    address; defaults to ``settings.dask_scheduler_address``. Only the year blocks whose bronze
    days, context rows or parameters changed are rewritten (a ticker with none is skipped);
    ``force`` rewrites every block. ``report.blocks_written`` counts the files written.
    New days that only extend a ticker's last year go to the shared delta file instead (one
    file for all tickers, see :mod:`mlfactory.data._delta`; ``report.appended``); ``compact``
    rewrites the blocks of the tickers in the delta and empties it.
    A ticker that fails (e.g. a corrupt bronze file) is listed in ``report.failures`` with the
    file named; the other tickers are still written. ``progress(result, done, total)`` is called
    as each ticker finishes.
    """
    from mlfactory.data._lock import writer_lock

    if settings is None and (bronze_dir is None or silver_dir is None):
        settings = get_settings()
    bronze_root = bronze_dir if bronze_dir is not None else bronze_prices_dir(settings)
    silver_root = silver_dir if silver_dir is not None else silver_features_dir(settings)
    store = BronzeStore(bronze_root, settings=settings)  # absolute: workers may run elsewhere
    silver = open_location(silver_root, settings)
    clean_windows, horizon = validate_feature_params(windows, horizon)
    address = _resolve_scheduler(scheduler, settings)
    chosen = _select_tickers(store.tickers(), tickers, store.location.shown)
    work = _plan_store(store, silver, chosen, clean_windows, horizon, force, compact)
    if not work.writes:  # nothing to write: no lock taken, no request made
        return _run_plan(work, store, silver, clean_windows, horizon, address, progress)
    with writer_lock(silver, "featurize"):  # one writer: a second featurize is refused
        if manifest_bytes(silver) != work.raw:  # another featurize wrote meanwhile
            work = _plan_store(store, silver, chosen, clean_windows, horizon, force, compact)
        return _run_plan(work, store, silver, clean_windows, horizon, address, progress)


@dataclass
class _StorePlan:
    """What a featurize will do, from the manifests alone."""

    raw: bytes | None  # the silver manifest it was planned from, as stored
    manifest: dict | None  # ... and parsed
    partitions: dict
    by_ticker: dict[str, list[str]]
    indexed: bool  # the manifest lists the partitions (else they were listed)
    legacy: list[str]  # tickers still in the one-file layout
    delta: SilverDelta | None
    options: dict
    skipped: list[TickerResult]
    tasks: list  # (args, kwargs) of featurize_ticker
    appendable: dict[str, tuple]  # ticker -> (append candidate, its task otherwise)

    @property
    def writes(self) -> bool:
        return bool(self.tasks or self.appendable or not self.indexed)


def _plan_store(
    store: BronzeStore,
    silver: Location,
    chosen: list[str],
    clean_windows: tuple[int, ...],
    horizon: int,
    force: bool,
    compact: bool,
) -> _StorePlan:
    """Each chosen ticker skipped, appended to the delta or given a task (no data read)."""
    from mlfactory.data._append import candidate

    raw = manifest_bytes(silver)
    manifest = parse_manifest(raw, silver)
    listed = manifest.get("partitions") if manifest else None
    indexed = isinstance(listed, dict)
    partitions: dict = dict(listed) if indexed else {n: {} for n in _list_silver(silver)}
    by_ticker = silver_files_by_ticker(partitions)
    legacy = [
        t for t in chosen if any(n.endswith(SILVER_LEGACY_FILE) for n in by_ticker.get(t, []))
    ]
    all_sources = _manifest_sources(store)
    # an endpoint at most (workers bring their own credentials); the object store's when one
    # of bronze and silver is local
    options = silver.options or store.location.options
    delta = delta_from_manifest(partitions, by_ticker) if indexed else None
    skipped: list[TickerResult] = []
    tasks = []
    appendable: dict[str, tuple] = {}
    for ticker in chosen:
        sources = None if all_sources is None else all_sources.get(ticker)
        recorded = _recorded_blocks(by_ticker.get(ticker, []), partitions)
        bronze_url = store.location.child(f"ticker={ticker}").url
        plan = job = None
        if sources is not None:
            known = {(a, b): fp for a, b, fp in recorded} if recorded else None
            files = [_SourceFile(*s) for s in sources]
            plan = plan_ticker(files, known, clean_windows, horizon, force)
            if compact and delta is not None and ticker in delta.tickers and plan[0]:
                plan = (plan[0], plan[1] | {plan[0][-1]}, plan[2])  # fold the delta in
            if not plan[1]:
                skipped.append(TickerResult(ticker, "skipped"))
                continue
            if not (force or compact):
                names = by_ticker.get(ticker, [])
                job = candidate(ticker, files, plan, known, names, partitions, bronze_url)
        task = (
            (
                ticker,
                bronze_url,
                silver.child(f"ticker={ticker}").url,
                clean_windows,
                horizon,
                force,
            ),
            {"sources": sources, "options": options, "recorded": recorded, "plan": plan},
        )
        if job is not None:
            appendable[ticker] = (job, task)
        else:
            tasks.append(task)
    return _StorePlan(
        raw,
        manifest,
        partitions,
        by_ticker,
        indexed,
        legacy,
        delta,
        options,
        skipped,
        tasks,
        appendable,
    )


def _run_plan(
    work: _StorePlan,
    store: BronzeStore,
    silver: Location,
    clean_windows: tuple[int, ...],
    horizon: int,
    address: str | None,
    progress: ProgressCallback | None,
) -> FeaturizeReport:
    """Append, run the tasks, record the manifest (under the writer lock when it writes)."""
    from mlfactory.data._append import append_all

    if work.legacy:
        logger.warning(
            "silver store %s holds %d ticker(s) in the one-file layout of an older mlfactory: "
            "rebuilding them in year blocks",
            silver.shown,
            len(work.legacy),
        )
    skipped, tasks, appendable = work.skipped, list(work.tasks), work.appendable
    options = work.options
    started = time.perf_counter()
    appended: list[TickerResult] = []
    new_rows = None
    if appendable:
        outcome = append_all(
            [job for job, _ in appendable.values()], clean_windows, horizon, options
        )
        appended = [
            TickerResult(a.ticker, "written", a.new_rows, appended=a) for a in outcome.appended
        ]
        appended += [
            TickerResult(job.ticker, "failed", error=error) for job, error in outcome.failed
        ]
        tasks.extend(appendable[job.ticker][1] for job in outcome.others)
        new_rows = outcome.rows
    if address is None:
        address = _default_scheduler(len(tasks), store.location.remote or silver.remote)
    logger.info(
        "featurizing %d ticker(s) from %s with scheduler %s (windows=%s, horizon=%d, "
        "%d unchanged by the manifests, %d appended to the delta)",
        len(tasks),
        store.location.shown,
        address,
        ",".join(map(str, clean_windows)),
        horizon,
        len(skipped),
        len(appended),
    )
    results: list[TickerResult] = []
    total = len(skipped) + len(appendable) + len(work.tasks)
    if progress is not None:
        for done, result in enumerate([*skipped, *appended], start=1):
            progress(result, done, total)
    before = len(skipped) + len(appended)
    try:
        if not tasks:
            pass
        elif "://" in address:
            results = _run_distributed(tasks, address, progress, before, total)
        else:
            results = _run_local(tasks, address, progress, before, total)
    finally:
        results = [*results, *appended]
        _record(
            silver,
            work.manifest,
            work.partitions,
            work.by_ticker,
            results,
            clean_windows,
            horizon,
            work.indexed,
            work.delta,
            new_rows,
        )
    report = FeaturizeReport(
        silver_dir=silver.local_path if not silver.remote else silver.url,
        windows=clean_windows,
        horizon=horizon,
        scheduler=address,
        seconds=time.perf_counter() - started,
        results=sorted([*results, *skipped], key=lambda r: r.ticker),
    )
    for failure in report.failures:
        logger.error("ticker %s failed: %s", failure.ticker, failure.error)
    logger.info(
        "featurize done in %.1fs: %d written (%d rows), %d skipped, %d failed",
        report.seconds,
        len(report.written),
        report.rows_written,
        len(report.skipped),
        len(report.failures),
    )
    return report
