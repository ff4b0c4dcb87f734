"""Bronze prices -> silver features, one Dask task per ticker.

The bronze store is partitioned by ticker, so every ticker's history is one independent task: read
its year files in date order, compute the features (:func:`feature_arrays`, the same arithmetic as
:func:`compute_features`), write ``silver/features/ticker=T/part-0.parquet`` atomically. Windows
never cross tickers, so no shuffle is needed; Dask only schedules the tasks (local threads by
default, or a cluster at ``scheduler="tcp://host:8786"`` / ``MLFACTORY_DASK_SCHEDULER_ADDRESS``;
the workers must see the same store: a shared folder or ``s3://…``). A task receives URLs and the
storage options (an endpoint, never a credential): workers read credentials from their own
environment, so nothing secret enters the task graph.

Incremental: each silver file records, in the silver manifest and in its parquet metadata, the
content hashes of the bronze partitions it was built from (from the bronze manifest) and the
feature parameters. A ticker whose inputs and parameters are unchanged is skipped by the client
from the two manifests alone (no task, no object read, no listing); new days (a rewritten year
file) rebuild that ticker only. The silver manifest is written once the tasks are done: a silver
file becomes visible to readers of the manifest then.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlfactory.data._bronze import BronzeStore
from mlfactory.data._features import DEFAULT_WINDOWS, feature_arrays, validate_feature_params
from mlfactory.data._layout import BRONZE_SCHEMA, bronze_prices_dir, silver_features_dir
from mlfactory.data._manifest import now_text, partition_entry, read_manifest, write_manifest
from mlfactory.exceptions import ConfigError, DataError, MlfactoryError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings
from mlfactory.storage import (
    Location,
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
    entry: dict | None = field(default=None, repr=False, compare=False)


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


def _fingerprint(files: list[_SourceFile], windows, horizon) -> dict:
    return {
        "version": FEATURES_VERSION,
        "windows": list(windows),
        "horizon": horizon,
        "sources": [[f.name, f.token] for f in files],
    }


def _stored_fingerprint(target: Location) -> dict | None:
    try:
        with target.fs.open(target.path, "rb") as handle:
            metadata = pq.read_schema(handle).metadata or {}
        return json.loads(metadata[METADATA_KEY])
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return None
    except Exception:  # an object store that does not answer: rebuild, the write will say why
        return None


def _read_bronze_file(path: str, options: dict) -> pa.Table:
    try:
        if is_remote(path):
            data = read_bytes(location_from(path, options))
            file = pq.ParquetFile(pa.BufferReader(data))
        else:
            # Single-threaded per file: files are small, the parallelism is across tickers.
            file = pq.ParquetFile(path, pre_buffer=False)
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


def _sorted_by_date(table: pa.Table, ticker_dir: object) -> pa.Table:
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


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=COMPRESSION, use_dictionary=DICTIONARY_COLUMNS)
    return sink.getvalue()


def featurize_ticker(
    ticker: str,
    bronze_ticker_dir: str | Path,
    silver_ticker_dir: str | Path,
    windows: Iterable[int] = DEFAULT_WINDOWS,
    horizon: int = 1,
    force: bool = False,
    *,
    sources: list[tuple[int, str, str, str]] | None = None,
    options: dict | None = None,
    check_existing: bool = True,
    previous: dict | None = None,
) -> TickerResult:
    """Build one ticker's silver file; failures are returned, not raised (other tasks go on).

    Runs on a Dask worker: it gets URLs, the bronze partitions (``sources``: year, name, URL,
    content token, from the bronze manifest) and the storage ``options`` (an endpoint, never a
    credential: the worker's environment has those). Without ``sources`` the ticker's folder is
    listed. The result carries the manifest entry of the file written.
    """
    started = time.perf_counter()
    options = options or {}
    bronze = location_from(str(bronze_ticker_dir), options)
    target = location_from(str(silver_ticker_dir), options).child(SILVER_FILE)
    try:
        clean_windows, horizon = validate_feature_params(windows, horizon)
        if sources is None:
            files = _year_files(bronze)
        else:
            files = [_SourceFile(*source) for source in sources]
        if not files:
            raise DataError(f"no parquet files under {bronze}; expected year=YYYY/part-0.parquet")
        fingerprint = _fingerprint(files, clean_windows, horizon)
        if not force and previous is not None and previous == fingerprint:
            return TickerResult(ticker, "skipped", 0, time.perf_counter() - started)
        if (
            not force
            and check_existing
            and target.fs.exists(target.path)
            and _stored_fingerprint(target) == fingerprint
        ):
            data = read_bytes(target)  # a file the manifest does not list yet: index it
            rows = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
            entry = partition_entry(data, rows, fingerprint=fingerprint)
            return TickerResult(ticker, "skipped", 0, time.perf_counter() - started, entry=entry)
        prices = pa.concat_tables([_read_bronze_file(f.path, options) for f in files])
        prices = _sorted_by_date(prices, bronze)
        table = _features_table(prices, clean_windows, horizon)
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(fingerprint).encode()})
        data = _parquet_bytes(table)
        write_bytes(target, data)
        entry = partition_entry(data, table.num_rows, fingerprint=fingerprint)
    except (MlfactoryError, OSError) as exc:
        message = str(exc) if isinstance(exc, MlfactoryError) else f"{bronze}: {exc}"
        return TickerResult(ticker, "failed", 0, time.perf_counter() - started, message)
    return TickerResult(
        ticker, "written", table.num_rows, time.perf_counter() - started, entry=entry
    )


# Orchestration -----------------------------------------------------------------------------


def bronze_tickers(bronze_dir: Path | str) -> list[str]:
    """Tickers present in the bronze store (from its manifest), sorted."""
    return BronzeStore(bronze_dir).tickers()


def _manifest_sources(store: BronzeStore, ticker: str) -> list[tuple[int, str, str, str]] | None:
    """The ticker's bronze partitions from the manifest (``None``: an older store, not indexed)."""
    if not store.indexed:
        return None
    out = []
    prefix = f"ticker={ticker}/"
    for name, entry in sorted(store.index().items()):
        if not name.startswith(prefix) or not entry.get("sha256"):
            if name.startswith(prefix):
                return None
            continue
        relative = name.removeprefix(prefix)
        year = int(relative.split("/", 1)[0].removeprefix("year="))
        out.append((year, relative, store.location.child(name).url, entry["sha256"]))
    return sorted(out)


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


def _run_local(
    tasks, scheduler: str, progress: ProgressCallback | None, done: int, total: int
) -> list[TickerResult]:
    import dask
    from dask.callbacks import Callback

    def _posttask(key, result, dsk, state, worker_id) -> None:
        nonlocal done
        if isinstance(result, TickerResult) and progress is not None:
            done += 1
            progress(result, done, total)

    delayed = [dask.delayed(featurize_ticker, pure=False)(*args, **kw) for args, kw in tasks]
    with Callback(posttask=_posttask):
        return list(dask.compute(*delayed, scheduler=scheduler))


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
    bronze_root = bronze_dir if bronze_dir is not None else bronze_prices_dir(settings)
    silver_root = silver_dir if silver_dir is not None else silver_features_dir(settings)
    store = BronzeStore(bronze_root, settings=settings)  # absolute: workers may run elsewhere
    silver = open_location(silver_root, settings)
    clean_windows, horizon = validate_feature_params(windows, horizon)
    address = _resolve_scheduler(scheduler, settings)
    chosen = _select_tickers(store.tickers(), tickers, store.location.shown)
    manifest = read_manifest(silver)
    listed = manifest.get("partitions") if manifest else None
    indexed = isinstance(listed, dict)
    partitions: dict = dict(listed) if indexed else {}
    options = silver.options  # an endpoint at most: workers bring their own credentials
    skipped: list[TickerResult] = []
    tasks = []
    for ticker in chosen:
        sources = _manifest_sources(store, ticker)
        name = f"ticker={ticker}/{SILVER_FILE}"
        if sources is not None and not force:
            fingerprint = _fingerprint([_SourceFile(*s) for s in sources], clean_windows, horizon)
            if (partitions.get(name) or {}).get("fingerprint") == fingerprint:
                skipped.append(TickerResult(ticker, "skipped"))
                continue
        tasks.append(
            (
                (
                    ticker,
                    store.location.child(f"ticker={ticker}").url,
                    silver.child(f"ticker={ticker}").url,
                    clean_windows,
                    horizon,
                    force,
                ),
                {
                    "sources": sources,
                    "options": options,
                    "check_existing": not indexed,
                    "previous": (partitions.get(name) or {}).get("fingerprint"),
                },
            )
        )
    logger.info(
        "featurizing %d ticker(s) from %s with scheduler %s (windows=%s, horizon=%d, "
        "%d unchanged by the manifests)",
        len(tasks),
        store.location.shown,
        address,
        ",".join(map(str, clean_windows)),
        horizon,
        len(skipped),
    )
    started = time.perf_counter()
    results: list[TickerResult] = []
    total = len(chosen)
    if progress is not None:
        for done, result in enumerate(skipped, start=1):
            progress(result, done, total)
    try:
        if not tasks:
            pass
        elif "://" in address:
            results = _run_distributed(tasks, address, progress, len(skipped), total)
        else:
            results = _run_local(tasks, address, progress, len(skipped), total)
    finally:
        changed = {
            f"ticker={r.ticker}/{SILVER_FILE}": r.entry for r in results if r.entry is not None
        }
        changed = {k: v for k, v in changed.items() if partitions.get(k) != v}
        if changed or (not indexed and results):
            partitions.update(changed)
            info = {k: v for k, v in (manifest or {}).items() if k not in ("partitions", "format")}
            info.update(last_featurize=now_text(), windows=list(clean_windows), horizon=horizon)
            write_manifest(silver, {**info, "partitions": dict(sorted(partitions.items()))})
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
