"""Bronze prices -> silver features, one Dask task per ticker.

The bronze store is partitioned by ticker, so every ticker's history is one independent task: read
its year files in date order, compute the features (:func:`feature_arrays`, the same arithmetic as
:func:`compute_features`), write ``silver/features/ticker=T/part-0.parquet`` atomically. Windows
never cross tickers, so no shuffle is needed; Dask only schedules the tasks (local threads by
default, or a cluster at ``scheduler="tcp://host:8786"`` / ``MLFACTORY_DASK_SCHEDULER_ADDRESS``;
the workers must see the same filesystem).

Incremental: each silver file records, in its parquet metadata, the size and mtime of the bronze
files it was built from and the feature parameters. A ticker whose inputs and parameters are
unchanged is skipped; new days (a rewritten year file) rebuild that ticker only.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlfactory.data._features import DEFAULT_WINDOWS, feature_arrays, validate_feature_params
from mlfactory.data._layout import BRONZE_SCHEMA, bronze_prices_dir, silver_features_dir
from mlfactory.exceptions import ConfigError, DataError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings

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
SILVER_FILE = "part-0.parquet"
METADATA_KEY = b"mlfactory.features"
FEATURES_VERSION = 1
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


@dataclass
class FeaturizeReport:
    """Outcome of :func:`featurize`: one :class:`TickerResult` per ticker, sorted by ticker."""

    silver_dir: Path
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
    def ok(self) -> bool:
        return not self.failures


# Reading bronze ----------------------------------------------------------------------------


def _is_data_file(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith((".", "_"))


@dataclass(frozen=True)
class _SourceFile:
    year: int
    name: str  # relative to the ticker folder, e.g. year=2024/part-0.parquet
    path: str
    size: int
    mtime_ns: int


def _year_files(ticker_dir: Path) -> list[_SourceFile]:
    """The ticker's parquet files with their size and mtime, oldest year first."""
    found: list[_SourceFile] = []
    for entry in os.scandir(ticker_dir):
        if not entry.is_dir() or not entry.name.startswith("year="):
            continue
        try:
            year = int(entry.name.removeprefix("year="))
        except ValueError:
            raise DataError(
                f"unexpected folder {entry.path}: expected year=YYYY inside {ticker_dir}"
            ) from None
        for file in os.scandir(entry.path):
            if file.is_file() and _is_data_file(file.name):
                stat = file.stat()
                name = f"{entry.name}/{file.name}"
                found.append(_SourceFile(year, name, file.path, stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: (f.year, f.name))


def _fingerprint(files: list[_SourceFile], windows, horizon) -> dict:
    return {
        "version": FEATURES_VERSION,
        "windows": list(windows),
        "horizon": horizon,
        "sources": [[f.name, f.size, f.mtime_ns] for f in files],
    }


def _stored_fingerprint(path: Path) -> dict | None:
    try:
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[METADATA_KEY])
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return None


def _read_bronze_file(path: str) -> pa.Table:
    try:
        # Single-threaded per file: files are small, the parallelism is across tickers.
        table = pq.ParquetFile(path, pre_buffer=False).read(use_threads=False)
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


def _sorted_by_date(table: pa.Table, ticker_dir: Path) -> pa.Table:
    days = table.column("date").to_numpy().astype("datetime64[D]").view(np.int64)
    steps = np.diff(days)
    if (steps > 0).all():
        return table
    order = np.argsort(days, kind="stable")
    days = days[order]
    repeated = np.diff(days) == 0
    if repeated.any():
        shown = ", ".join(str(d) for d in days[1:][repeated][:5].astype("datetime64[D]"))
        raise DataError(f"{ticker_dir} has duplicate dates ({shown}); expected one row per day")
    return table.take(pa.array(order))


# Writing silver ----------------------------------------------------------------------------


def _features_table(prices: pa.Table, windows, horizon: int) -> pa.Table:
    def floats(name: str) -> np.ndarray:
        return prices.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)

    arrays = feature_arrays(
        floats("high"), floats("low"), floats("close"), floats("adj_close"), windows, horizon
    )
    columns = list(prices.columns)
    names = list(prices.column_names)
    for name, (values, null_mask) in arrays.items():
        if null_mask is None:
            columns.append(pa.array(values, type=pa.float64(), from_pandas=True))
        else:
            columns.append(pa.array(values, type=pa.int8(), mask=null_mask))
        names.append(name)
    return pa.Table.from_arrays(columns, names=names)


def _write_atomically(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, temporary, compression=COMPRESSION, use_dictionary=DICTIONARY_COLUMNS)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def featurize_ticker(
    ticker: str,
    bronze_ticker_dir: str | Path,
    silver_ticker_dir: str | Path,
    windows: Iterable[int] = DEFAULT_WINDOWS,
    horizon: int = 1,
    force: bool = False,
) -> TickerResult:
    """Build one ticker's silver file; failures are returned, not raised (other tasks go on)."""
    started = time.perf_counter()
    bronze = Path(bronze_ticker_dir)
    target = Path(silver_ticker_dir) / SILVER_FILE
    try:
        clean_windows, horizon = validate_feature_params(windows, horizon)
        files = _year_files(bronze)
        if not files:
            raise DataError(f"no parquet files under {bronze}; expected year=YYYY/part-0.parquet")
        fingerprint = _fingerprint(files, clean_windows, horizon)
        if not force and target.exists() and _stored_fingerprint(target) == fingerprint:
            return TickerResult(ticker, "skipped", 0, time.perf_counter() - started)
        prices = pa.concat_tables([_read_bronze_file(f.path) for f in files])
        prices = _sorted_by_date(prices, bronze)
        table = _features_table(prices, clean_windows, horizon)
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(fingerprint).encode()})
        _write_atomically(table, target)
    except (DataError, OSError) as exc:
        message = str(exc) if isinstance(exc, DataError) else f"{bronze}: {exc}"
        return TickerResult(ticker, "failed", 0, time.perf_counter() - started, message)
    return TickerResult(ticker, "written", table.num_rows, time.perf_counter() - started)


# Orchestration -----------------------------------------------------------------------------


def bronze_tickers(bronze_dir: Path) -> list[str]:
    """Tickers present in the bronze store (``ticker=T`` folders), sorted."""
    if not bronze_dir.is_dir():
        return []
    return sorted(
        entry.name.removeprefix("ticker=")
        for entry in os.scandir(bronze_dir)
        if entry.is_dir() and entry.name.startswith("ticker=")
    )


def _select_tickers(available: list[str], wanted: Iterable[str] | None, bronze_dir: Path):
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


def _resolve_scheduler(scheduler: str | None, settings: Settings | None) -> str:
    chosen = scheduler or (settings.dask_scheduler_address if settings else None)
    chosen = (chosen or DEFAULT_SCHEDULER).strip()
    if chosen in LOCAL_SCHEDULERS or "://" in chosen:
        return chosen
    raise ConfigError(
        f"invalid Dask scheduler {chosen!r}: expected one of {', '.join(LOCAL_SCHEDULERS)} "
        "or a scheduler address such as tcp://10.0.0.5:8786"
    )


ProgressCallback = Callable[[TickerResult, int, int], None]


def _run_local(tasks, scheduler: str, progress: ProgressCallback | None) -> list[TickerResult]:
    import dask
    from dask.callbacks import Callback

    total = len(tasks)
    done = 0

    def _posttask(key, result, dsk, state, worker_id) -> None:
        nonlocal done
        if isinstance(result, TickerResult) and progress is not None:
            done += 1
            progress(result, done, total)

    delayed = [dask.delayed(featurize_ticker, pure=False)(*args) for args in tasks]
    with Callback(posttask=_posttask):
        return list(dask.compute(*delayed, scheduler=scheduler))


def _run_distributed(tasks, address: str, progress: ProgressCallback | None) -> list[TickerResult]:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address} ({exc}); check "
            "MLFACTORY_DASK_SCHEDULER_ADDRESS or --scheduler"
        ) from None
    try:
        futures = [client.submit(featurize_ticker, *args, pure=False) for args in tasks]
        results = []
        for done, future in enumerate(as_completed(futures, loop=client.loop), start=1):
            result = future.result()
            results.append(result)
            if progress is not None:
                progress(result, done, len(tasks))
        return results
    finally:
        client.close()


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
    progress: ProgressCallback | None = None,
) -> FeaturizeReport:
    """Compute silver features for every (or the given) bronze ticker with Dask.

    ``scheduler``: ``threads`` (default), ``processes``, ``synchronous`` or a Dask scheduler
    address; defaults to ``settings.dask_scheduler_address``. Tickers whose bronze files and
    parameters are unchanged since their silver file was written are skipped unless ``force``.
    A ticker that fails (e.g. a corrupt bronze file) is listed in ``report.failures`` with the
    file named; the other tickers are still written. ``progress(result, done, total)`` is called
    as each ticker finishes.
    """
    if settings is None and (bronze_dir is None or silver_dir is None):
        settings = get_settings()
    bronze = Path(bronze_dir) if bronze_dir is not None else bronze_prices_dir(settings)
    silver = Path(silver_dir) if silver_dir is not None else silver_features_dir(settings)
    bronze, silver = bronze.resolve(), silver.resolve()  # workers may run elsewhere
    clean_windows, horizon = validate_feature_params(windows, horizon)
    address = _resolve_scheduler(scheduler, settings)
    chosen = _select_tickers(bronze_tickers(bronze), tickers, bronze)
    tasks = [
        (
            ticker,
            str(bronze / f"ticker={ticker}"),
            str(silver / f"ticker={ticker}"),
            clean_windows,
            horizon,
            force,
        )
        for ticker in chosen
    ]
    logger.info(
        "featurizing %d ticker(s) from %s with scheduler %s (windows=%s, horizon=%d)",
        len(tasks),
        bronze,
        address,
        ",".join(map(str, clean_windows)),
        horizon,
    )
    started = time.perf_counter()
    if "://" in address:
        results = _run_distributed(tasks, address, progress)
    else:
        results = _run_local(tasks, address, progress)
    report = FeaturizeReport(
        silver_dir=silver,
        windows=clean_windows,
        horizon=horizon,
        scheduler=address,
        seconds=time.perf_counter() - started,
        results=sorted(results, key=lambda r: r.ticker),
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
