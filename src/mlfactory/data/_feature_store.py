"""Reading the silver feature store, with filters pushed down to parquet.

Only the ``ticker=T`` folders asked for are opened; date bounds become a pyarrow dataset filter, so
row groups outside them are skipped from their statistics; only the requested columns are
decoded. The result is pandas (or, with ``lazy=True``, a Dask DataFrame with one partition per
ticker), always with ``ticker`` and ``date`` columns and sorted by ticker then date.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mlfactory.data._delta import (
    SilverDelta,
    delta_from_listing,
    delta_from_manifest,
    merge_delta,
)
from mlfactory.data._layout import silver_features_dir, silver_files_by_ticker
from mlfactory.data._manifest import read_manifest
from mlfactory.data.sampling import random_sample, stratified_sample, validate_sample_args
from mlfactory.exceptions import DataError, SpecError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings
from mlfactory.storage import (
    Location,
    location_from,
    open_location,
    storage_error,
    translated,
    write_bytes,
)

__all__ = [
    "SAMPLE_FORMATS",
    "DateLike",
    "SampleResult",
    "feature_store_tickers",
    "load_features",
    "sample_features",
    "silver_files",
    "silver_horizons",
]

logger = get_logger(__name__)

DateLike = str | dt.date | dt.datetime | pd.Timestamp
KEY_COLUMNS = ("ticker", "date")
# 0/1 flags with nulls stay integers (pandas nullable Int8) instead of turning into floats.
_TYPES = {pa.int8(): pd.Int8Dtype()}


def silver_files(silver_dir: Path | str | Location) -> dict[str, list[str]]:
    """Each ticker's silver files (relative names, year order): from the silver manifest (a
    store written before manifests listed partitions is listed instead). Year blocks
    (``ticker=T/part-FIRST-LAST.parquet``) and the older one file per ticker are both read."""
    return _silver_index(open_location(silver_dir))[0]


def _silver_index(silver: Location) -> tuple[dict[str, list[str]], SilverDelta | None]:
    """Each ticker's silver files and the delta of recent days (see :func:`silver_files`)."""
    manifest = read_manifest(silver)
    listed = manifest.get("partitions") if manifest else None
    if isinstance(listed, dict):
        files = silver_files_by_ticker(listed)
        return files, delta_from_manifest(listed, files)
    files = _listed_files(silver)
    return files, delta_from_listing(silver, files) if files else None


def _listed_files(silver: Location) -> dict[str, list[str]]:
    base = silver.path.rstrip("/")
    if silver.remote:
        with translated(silver, "listing"):
            found = [str(p)[len(base) + 1 :] for p in silver.fs.glob(f"{base}/ticker=*/*.parquet")]
    elif not os.path.isdir(base):
        return {}
    else:
        found = [
            f"{folder.name}/{file.name}"
            for folder in os.scandir(base)
            if folder.name.startswith("ticker=") and folder.is_dir()
            for file in os.scandir(folder.path)
            if file.is_file()
        ]
    return silver_files_by_ticker(found)


def feature_store_tickers(silver_dir: Path | str | Location) -> list[str]:
    """Tickers that have silver features, sorted (see :func:`silver_files`)."""
    return list(silver_files(silver_dir))


def silver_horizons(
    silver_dir: Path | str | Location, settings: Settings | None = None
) -> dict[str, int]:
    """Each ticker's label horizon as recorded by ``featurize`` in the silver manifest."""
    manifest = read_manifest(open_location(silver_dir, settings)) or {}
    found = {}
    for name, entry in (manifest.get("partitions") or {}).items():
        try:
            found[name.split("/", 1)[0].removeprefix("ticker=")] = int(
                entry["fingerprint"]["horizon"]
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _as_date(value: DateLike | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        raise DataError(f"invalid {name} date {value!r}: expected YYYY-MM-DD") from None


def _choose_tickers(available: list[str], tickers: Iterable[str] | None, silver: Path):
    if not available:
        raise DataError(
            f"the feature store {silver} is empty; run `mlfactory data ingest` and then "
            "`mlfactory data featurize` first"
        )
    if tickers is None:
        return available
    if isinstance(tickers, str):
        tickers = [tickers]
    chosen = sorted({t.strip() for t in tickers if t.strip()})
    known = set(available)
    unknown = [t for t in chosen if t not in known]
    if unknown or not chosen:
        shown = ", ".join(available[:20]) + (" …" if len(available) > 20 else "")
        raise DataError(
            f"unknown ticker(s) {', '.join(unknown) or '(none given)'}: the feature store "
            f"{silver} holds {len(available)} ticker(s): {shown}"
        )
    return chosen


def _choose_columns(schema: pa.Schema, columns: Sequence[str] | None) -> list[str]:
    stored = [name for name in schema.names if name not in KEY_COLUMNS]
    if columns is None:
        return stored
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in stored and c not in KEY_COLUMNS]
    if unknown:
        raise DataError(
            f"unknown feature column(s) {', '.join(unknown)}; available: "
            f"{', '.join([*KEY_COLUMNS, *stored])}"
        )
    return [c for c in dict.fromkeys(columns) if c not in KEY_COLUMNS]


def _date_filter(start: dt.date | None, end: dt.date | None) -> ds.Expression | None:
    expression = None
    if start is not None:
        expression = ds.field("date") >= pa.scalar(start, pa.date32())
    if end is not None:
        upper = ds.field("date") <= pa.scalar(end, pa.date32())
        expression = upper if expression is None else expression & upper
    return expression


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas(types_mapper=_TYPES.get, date_as_object=False)
    return frame.reset_index(drop=True)


def _read_ticker(
    paths: list[str],
    ticker: str,
    delta: tuple[str, dt.date] | None,
    columns: list[str],
    start: dt.date | None,
    end: dt.date | None,
    options: dict | None = None,
) -> pd.DataFrame:
    """One ticker's rows as pandas (a Dask partition; options: an endpoint, no credential).
    ``delta``: the delta file's URL and the first date its rows of this ticker supersede."""
    locations = [location_from(path, options or {}) for path in paths]
    filesystem = locations[0].fs if locations[0].remote else None
    table = ds.dataset(
        [location.path for location in locations], format="parquet", filesystem=filesystem
    ).to_table(columns=["date", *columns], filter=_date_filter(start, end))
    table = table.add_column(0, "ticker", pa.array([ticker] * table.num_rows, pa.string()))
    if delta is not None:
        recent = _read_delta(location_from(delta[0], options or {}), [ticker], columns, start, end)
        table = merge_delta(table, recent, {ticker: delta[1]})
    return _to_pandas(table.sort_by("date"))


def _read_delta(
    location: Location,
    tickers: list[str],
    columns: list[str],
    start: dt.date | None,
    end: dt.date | None,
) -> pa.Table:
    """The delta's rows of ``tickers`` between ``start`` and ``end``."""
    wanted = ds.field("ticker").isin(tickers)
    dates = _date_filter(start, end)
    filesystem = location.fs if location.remote else None
    return ds.dataset(location.path, format="parquet", filesystem=filesystem).to_table(
        columns=["ticker", "date", *columns],
        filter=wanted if dates is None else wanted & dates,
    )


def load_features(
    tickers: Iterable[str] | str | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    columns: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    silver_dir: Path | str | None = None,
    lazy: bool = False,
) -> Any:
    """Features of the given tickers between ``start`` and ``end`` (both inclusive).

    Returns a pandas DataFrame (or a Dask DataFrame with ``lazy=True``, one partition per ticker)
    with ``ticker`` and ``date`` first, then ``columns`` (all stored columns by default), sorted by
    ticker and date. Raises :class:`DataError` for an empty store, unknown tickers or columns.
    """
    if silver_dir is None:
        settings = settings or get_settings()
        silver_dir = silver_features_dir(settings)
    location = open_location(silver_dir, settings)
    silver = location.shown
    by_ticker, delta = _silver_index(location)
    chosen = _choose_tickers(list(by_ticker), tickers, silver)
    cuts = delta.cuts(chosen) if delta is not None else {}
    first, last = _as_date(start, "start"), _as_date(end, "end")
    if first is not None and last is not None and first > last:
        raise DataError(f"start {first} is after end {last}; expected start <= end")
    files = {t: [location.child(name) for name in by_ticker[t]] for t in chosen}
    paths = [f.path for t in chosen for f in files[t]]
    filesystem = location.fs if location.remote else None
    with translated(location, "reading the feature store"):
        schema = pq.read_schema(paths[0], filesystem=filesystem)
    wanted = _choose_columns(schema, columns)

    if lazy:
        import dask.dataframe as dd

        meta_table = schema.empty_table().select(["date", *wanted])
        meta_table = meta_table.add_column(0, "ticker", pa.array([], pa.string()))
        delta_url = location.child(delta.name).url if delta is not None else None
        return dd.from_map(
            _read_ticker,
            [[f.url for f in files[t]] for t in chosen],
            chosen,
            [(delta_url, cuts[t]) if t in cuts else None for t in chosen],
            columns=wanted,
            start=first,
            end=last,
            options=location.options,
            meta=_to_pandas(meta_table),
            divisions=None,
            enforce_metadata=False,
        )

    partitioning = ds.partitioning(pa.schema([("ticker", pa.string())]), flavor="hive")
    try:
        dataset = ds.dataset(
            paths,
            format="parquet",
            partitioning=partitioning,
            partition_base_dir=location.path,
            filesystem=filesystem,
        )
        table = dataset.to_table(
            columns=["ticker", "date", *wanted], filter=_date_filter(first, last)
        )
        if cuts:
            assert delta is not None
            recent = _read_delta(location.child(delta.name), list(cuts), wanted, first, last)
            table = merge_delta(table, recent, cuts)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read the feature store {silver}: {exc}") from exc
    except Exception as exc:
        raise storage_error(exc, location, "reading the feature store") from exc
    table = table.sort_by([("ticker", "ascending"), ("date", "ascending")])
    logger.debug("loaded %d rows of %d ticker(s) from %s", table.num_rows, len(chosen), silver)
    return _to_pandas(table)


SAMPLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class SampleResult:
    """A sample written by :func:`sample_features`."""

    path: Path | str
    rows: int
    selected: int
    columns: int
    tickers: int


def _write_frame(frame: pd.DataFrame, target: Location, suffix: str) -> None:
    """Write the frame whole (temp file + rename locally, one PUT on an object store)."""
    sink = io.BytesIO()
    if SAMPLE_FORMATS[suffix] == "csv":
        sink.write(frame.to_csv(index=False).encode("utf-8"))
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    write_bytes(target, sink.getvalue())


def sample_features(
    out: Path | str,
    *,
    n: int | None = None,
    frac: float | None = None,
    stratify: str | None = None,
    seed: int = 0,
    tickers: Iterable[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    settings: Settings | None = None,
    silver_dir: Path | str | None = None,
) -> SampleResult:
    """Sample rows of the feature store into a CSV or parquet file (chosen by extension).

    Reads the selected tickers and dates, draws ``n`` rows or a fraction ``frac`` (stratified on
    column ``stratify`` when given, so its class proportions are kept), seeded, and writes the
    file atomically; nothing is written when an argument is wrong.
    """
    target = open_location(out, settings)
    suffix = PurePosixPath(target.path).suffix.lower()
    if suffix not in SAMPLE_FORMATS:
        raise SpecError(
            f"cannot write {target.shown}: unknown extension {suffix or '(none)'!r}; "
            f"expected one of {', '.join(SAMPLE_FORMATS)}"
        )
    path = target.local_path if not target.remote else target.url
    validate_sample_args(n, frac)
    frame = load_features(tickers, start, end, settings=settings, silver_dir=silver_dir)
    if stratify is not None:
        sample = stratified_sample(frame, stratify, n=n, frac=frac, seed=seed)
    else:
        sample = random_sample(frame, n=n, frac=frac, seed=seed)
    sample = sample.reset_index(drop=True)
    _write_frame(sample, target, suffix)
    logger.info("wrote %d of %d feature rows to %s", len(sample), len(frame), path)
    return SampleResult(
        path=path,
        rows=len(sample),
        selected=len(frame),
        columns=sample.shape[1],
        tickers=int(sample["ticker"].nunique()),
    )
