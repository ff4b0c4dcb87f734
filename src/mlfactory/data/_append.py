"""New trading days appended to the silver delta instead of rewriting each ticker's block.

A ticker qualifies when only its last block is stale, that block is one year, it records the
count and digest of its bronze rows and the tail of the block before it, and its bronze year
still starts with those rows (:func:`append_ticker` checks the digest): the new rows are then a
plain append. Its features are computed as a rebuild of the block would (the previous block's
tail as lookback), and only the rows from the block file's last ``horizon`` rows on (their
targets look at the new days) go to the delta (:mod:`mlfactory.data._delta`). Anything else (a
corrected older day, a new year, a ticker with :data:`DELTA_MAX_ROWS` rows in the delta)
rewrites blocks as before.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlfactory.data._delta import (
    DELTA_MAX_ROWS,
    DELTA_METADATA_KEY,
    SilverDelta,
    delta_name,
    rows_digest,
)
from mlfactory.data._featurize import (
    COMPRESSION,
    STATISTICS_COLUMNS,
    Block,
    _block_years,
    _check_years,
    _features_table,
    _location,
    _read_bronze_file,
    _sorted_by_date,
    _SourceFile,
    _sources_digest,
    _Span,
    decode_tail,
)
from mlfactory.data._layout import parse_silver_name
from mlfactory.data._manifest import now_text, partition_entry
from mlfactory.exceptions import MlfactoryError
from mlfactory.storage import Location, is_remote, read_bytes, write_bytes

__all__ = ["Appended", "Candidate", "append_all", "candidate", "record_delta"]


@dataclass(frozen=True)
class Candidate:
    """A ticker that may append (from the manifests alone)."""

    ticker: str
    files: list[_SourceFile]
    layout: list[Block]
    known: dict[Block, dict]
    block: str  # the last block's file, relative to the store
    file_rows: int  # rows in that file (the delta supersedes its last ``horizon`` ones)
    bronze: str  # the ticker's bronze folder (URL)


@dataclass(frozen=True)
class Appended:
    """A ticker's new days: its last block's new fingerprint and its rows for the delta."""

    ticker: str
    block: str
    fingerprint: dict
    rows: pa.Table  # ``ticker`` first, then the block's columns
    start: dt.date  # the first date these rows supersede

    @property
    def new_rows(self) -> int:
        return self.rows.num_rows


def candidate(
    ticker: str,
    files: list[_SourceFile],
    plan: tuple[list[Block], set[Block], bool],
    known: dict[Block, dict] | None,
    names: list[str],
    partitions: dict,
    bronze: str,
) -> Candidate | None:
    """The ticker as an append candidate, or ``None`` (its blocks are rewritten instead)."""
    layout, stale, fresh = plan
    if fresh or not known or not layout:
        return None
    last = layout[-1]
    if stale != {last} or last[0] != last[1] or last not in known:
        return None
    if max(f.year for f in files) != last[1] or len(_block_years(last, files)) != 1:
        return None
    name = next((n for n in names if (parse_silver_name(n) or ())[1:] == last), None)
    rows = (partitions.get(name) or {}).get("rows") if name else None
    if name is None or not isinstance(rows, int):
        return None
    return Candidate(ticker, files, layout, known, name, rows, bronze)


def append_ticker(
    job: Candidate, windows: tuple[int, ...], horizon: int, options: dict
) -> Appended | None:
    """The ticker's new days for the delta, or ``None`` when they are not a plain append of
    what its last block recorded (the block is then rewritten)."""
    last = job.layout[-1]
    recorded = job.known[last]
    count, digest = recorded.get("count"), recorded.get("digest")
    if not isinstance(count, int) or count < horizon or not isinstance(digest, str):
        return None
    lookback = max(windows)
    years = sorted({f.year for f in job.files})
    prefix, at_start = None, len(job.layout) == 1
    if not at_start:
        found = decode_tail(job.known.get(job.layout[-2], {}), lookback, len(job.layout) == 2)
        if found is None:
            return None
        prefix, at_start = found
    own = _block_years(last, job.files)[0]
    bronze = _location(job.bronze, options)
    table = _sorted_by_date(_read_bronze_file(own.path, options), bronze)
    rows = table.num_rows
    if rows < count:
        return None
    stored, now = rows_digest(table, count, rows)
    if stored != digest:
        return None
    _check_years(table, [years[-1]], [rows], bronze)
    skip = 0 if prefix is None else len(prefix[0])
    year = last[0]
    span = _Span(
        table, {year: skip}, {year: skip + rows}, at_start, True, lookback, horizon, prefix
    )
    if span.before(skip) != recorded.get("before"):
        return None  # the rows it looks back to changed: rewrite
    cut = max(0, job.file_rows - horizon)
    if rows - cut > DELTA_MAX_ROWS:
        return None  # enough days in the delta: the block is rewritten with them
    features = _features_table(table, windows, horizon, prefix).slice(cut)
    fingerprint = {
        **recorded,
        "sources": _sources_digest([own]),
        "after": span.after(skip + rows),
        "tail": span.tail(skip + rows),
        "count": rows,
        "digest": now,
    }
    features = features.add_column(
        0, "ticker", pa.array([job.ticker] * features.num_rows, pa.string())
    )
    start = features.column("date")[0].as_py() if features.num_rows else None
    if start is None:
        return None
    return Appended(job.ticker, job.block, fingerprint, features, start)


def append_all(
    jobs: list[Candidate], windows: tuple[int, ...], horizon: int, options: dict
) -> tuple[list[Appended], list[Candidate], list[tuple[Candidate, str]]]:
    """``(appended, not appendable, failed with the error)``."""

    def one(job: Candidate) -> Appended | Candidate | tuple[Candidate, str]:
        try:
            return append_ticker(job, windows, horizon, options) or job
        except (MlfactoryError, OSError) as exc:
            message = str(exc) if isinstance(exc, MlfactoryError) else f"{job.bronze}: {exc}"
            return job, message

    # Local files: one thread (a memory-mapped read takes ~0.4 ms, the rest holds the
    # interpreter lock; threads only contend). Object stores: threads overlap the requests.
    if len(jobs) > 1 and is_remote(jobs[0].bronze):
        with ThreadPoolExecutor(max_workers=min(len(jobs), 4 * (os.cpu_count() or 1))) as pool:
            outcomes = list(pool.map(one, jobs))
    else:
        outcomes = [one(job) for job in jobs]
    appended = [o for o in outcomes if isinstance(o, Appended)]
    others = [o for o in outcomes if isinstance(o, Candidate)]
    failed = [o for o in outcomes if isinstance(o, tuple)]
    return appended, others, failed


def _delta_bytes(table: pa.Table, tickers: dict[str, dict]) -> bytes:
    metadata = {"tickers": tickers, "written": now_text()}
    table = table.replace_schema_metadata({DELTA_METADATA_KEY: json.dumps(metadata).encode()})
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression=COMPRESSION,
        write_statistics=["ticker", *STATISTICS_COLUMNS],
        row_group_size=1 << 20,
    )
    return sink.getvalue()


def record_delta(
    silver: Location,
    partitions: dict,
    delta: SilverDelta | None,
    appended: list[Appended],
    rewritten: set[str],
) -> str | None:
    """Write the new delta (the old one's rows of tickers still extending a listed block and
    not ``rewritten``, plus ``appended``) and list it in ``partitions`` (updated in place,
    with the appended blocks' new fingerprints). Returns the old delta's name to delete, if
    it was replaced."""
    for one in appended:
        partitions[one.block] = {**partitions[one.block], "fingerprint": one.fingerprint}
    new = {one.ticker for one in appended}
    kept = {
        ticker: info
        for ticker, info in (delta.tickers if delta else {}).items()
        if ticker not in new and ticker not in rewritten and info["block"] in partitions
    }
    if not appended and delta is not None and kept == delta.tickers:
        return None
    if not appended and delta is None:
        return None
    pieces = []
    if kept:
        old = pq.read_table(pa.BufferReader(read_bytes(silver.child(delta.name))))
        keep = pc.is_in(old.column("ticker"), value_set=pa.array(list(kept)))
        pieces.append(old.filter(keep).replace_schema_metadata(None))
    pieces.extend(one.rows for one in appended)
    tickers = dict(kept)
    for one in appended:
        tickers[one.ticker] = {
            "block": one.block,
            "from": one.start.isoformat(),
            "rows": one.new_rows,
        }
    old_name = delta.name if delta is not None else None
    if old_name is not None:
        partitions.pop(old_name, None)
    if not tickers:
        return old_name
    schema = pieces[-1].schema
    table = pa.concat_tables(
        [p if p.schema.equals(schema) else p.select(schema.names).cast(schema) for p in pieces]
    )
    table = table.sort_by([("ticker", "ascending"), ("date", "ascending")])
    data = _delta_bytes(table, dict(sorted(tickers.items())))
    entry = partition_entry(data, table.num_rows, tickers=dict(sorted(tickers.items())))
    name = delta_name(entry["sha256"][:8])
    write_bytes(silver.child(name), data)
    partitions[name] = entry
    return old_name if old_name != name else None
