"""The silver delta: the recent days of many tickers in one file.

A new trading day changes the last year block of every ticker (its new row, and the targets of
the ``horizon`` rows before it). Rewriting 500 blocks costs 500 files created, encoded and
written; instead ``featurize`` appends those rows to one file, ``_delta/part-HASH.parquet``
(a ``ticker`` column plus the block columns), listed in the silver manifest with, per ticker,
the block it extends and the first date it supersedes::

    "_delta/part-1a2b3c4d.parquet": {"rows": …, "sha256": …,
        "tickers": {"AAPL": {"block": "ticker=AAPL/part-2025-2025-….parquet",
                             "from": "2025-12-30", "rows": 2}}}

A ticker's rows are then its blocks' rows dated before ``from`` plus its delta rows (readers
merge them: :func:`merge_delta`). The delta is rewritten whole at each featurize (a few
thousand rows) and a ticker leaves it when its block is rewritten: after
:data:`DELTA_MAX_ROWS` rows, on ``featurize --compact`` or ``--force``, or when older days
change. The file's parquet metadata repeats the tickers' entries, so a store without its
manifest is still read right.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlfactory.storage import Location, translated

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DELTA_MAX_ROWS",
    "DELTA_METADATA_KEY",
    "SilverDelta",
    "delta_from_listing",
    "delta_from_manifest",
    "delta_name",
    "merge_delta",
    "rows_digest",
]

DELTA_DIR = "_delta"
# A ticker's rows in the delta before its block is rewritten with them (about three months of
# trading days: the delta stays a small file, and blocks are rewritten once a quarter).
DELTA_MAX_ROWS = 64
DELTA_METADATA_KEY = b"mlfactory.delta"
_DELTA_NAME = re.compile(r"^_delta/part-[0-9a-f]{8}\.parquet$")


def delta_name(version: str) -> str:
    """The delta's path relative to the store (``version``: 8 hex digits of its SHA-256)."""
    return f"{DELTA_DIR}/part-{version}.parquet"


def is_delta_name(name: str) -> bool:
    return bool(_DELTA_NAME.match(name))


@dataclass(frozen=True)
class SilverDelta:
    """The delta file and, per ticker, ``{"block", "from", "rows"}``."""

    name: str
    tickers: dict[str, dict]

    def cuts(self, tickers: list[str] | None = None) -> dict[str, dt.date]:
        """The first date each ticker's delta supersedes (of ``tickers`` when given)."""
        wanted = self.tickers if tickers is None else [t for t in tickers if t in self.tickers]
        return {t: dt.date.fromisoformat(self.tickers[t]["from"]) for t in wanted}


def _valid(tickers: object, files: dict[str, list[str]]) -> dict[str, dict]:
    """The tickers whose delta extends a block the store still lists (others are stale)."""
    if not isinstance(tickers, dict):
        return {}
    out = {}
    for ticker, info in tickers.items():
        if (
            isinstance(info, dict)
            and isinstance(info.get("from"), str)
            and info.get("block") in files.get(ticker, ())
        ):
            out[ticker] = info
    return out


def delta_from_manifest(partitions: dict, files: dict[str, list[str]]) -> SilverDelta | None:
    """The delta the manifest lists (``files``: each ticker's silver files)."""
    for name, entry in partitions.items():
        if is_delta_name(name) and isinstance(entry, dict):
            tickers = _valid(entry.get("tickers"), files)
            return SilverDelta(name, tickers) if tickers else None
    return None


def delta_from_listing(silver: Location, files: dict[str, list[str]]) -> SilverDelta | None:
    """The newest delta found by listing (a store without its manifest): its metadata names
    the blocks it extends; a delta left by an interrupted run extends blocks no longer there."""
    import pyarrow.parquet as pq

    base = silver.path.rstrip("/")
    try:
        with translated(silver, "listing"):
            found = sorted(silver.fs.glob(f"{base}/{DELTA_DIR}/part-*.parquet"))
    except FileNotFoundError:
        return None
    best: tuple[str, str, dict] | None = None
    for path in found:
        name = str(path)[len(base) + 1 :]
        if not is_delta_name(name):
            continue
        filesystem = silver.fs if silver.remote else None
        with translated(silver, "reading the feature store"):
            metadata = pq.read_schema(str(path), filesystem=filesystem).metadata or {}
        try:
            recorded = json.loads(metadata[DELTA_METADATA_KEY])
        except (KeyError, ValueError):
            continue
        tickers = _valid(recorded.get("tickers"), files)
        written = str(recorded.get("written", ""))
        if tickers and (best is None or written > best[0]):
            best = (written, name, tickers)
    return None if best is None else SilverDelta(best[1], best[2])


def rows_digest(table: pa.Table, *rows: int) -> str | tuple[str, ...]:
    """Digest of a bronze table's first ``rows`` rows, every column (whatever its chunks): a new
    day is a plain append when the stored rows still have this digest. Several counts give
    several digests, the columns read once. Per column: its name, then numbers as their array,
    text as offsets and characters, the null mask when there are nulls, then ``|``."""
    from mlfactory.data._arrow import null_mask

    pieces: list[list] = [[] for _ in rows]
    for name, column in zip(table.column_names, table.columns, strict=True):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        width = _byte_width(array.type)
        nulls = null_mask(array) if array.null_count else None
        label = name.encode()
        if width > 0:
            # fixed width: the data buffer itself (a null slot's bytes are whatever the writer
            # left there: at worst a ticker is rewritten instead of appended)
            values = memoryview(array.buffers()[1])[array.offset * width :]
        elif width == 0:
            _, offsets_buffer, data = array.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
                array.offset : array.offset + len(array) + 1
            ]
            text = memoryview(data) if data is not None else memoryview(b"")
        else:
            other = array.to_numpy(zero_copy_only=False)
        for piece, count in zip(pieces, rows, strict=True):
            piece.append(label)
            if width > 0:
                piece.append(values[: count * width])
            elif width == 0:
                piece.append((offsets[: count + 1] - offsets[0]).tobytes())
                piece.append(text[offsets[0] : offsets[count]])
            else:
                piece.append(other[:count].tobytes())
            if nulls is not None and nulls[:count].any():  # the same bytes whatever follows
                piece.append(nulls[:count].tobytes())
            piece.append(b"|")
    # one update a digest: each update of more than 2 KB lets go of the interpreter lock,
    # which the threads reading the next bronze files then hold (4 us a handoff, 64 a ticker)
    found = tuple(hashlib.sha256(b"".join(piece)).hexdigest()[:32] for piece in pieces)
    return found[0] if len(found) == 1 else found


_WIDTHS: dict = {}


def _byte_width(kind: pa.DataType) -> int:
    """Bytes a value of a fixed-width primitive type, 0 for strings, -1 for any other type."""
    width = _WIDTHS.get(kind)
    if width is None:
        import pyarrow as pa

        if pa.types.is_primitive(kind) and kind.bit_width % 8 == 0:
            width = kind.bit_width // 8
        else:
            width = 0 if pa.types.is_string(kind) else -1
        _WIDTHS[kind] = width
    return width


def merge_delta(blocks: pa.Table, delta: pa.Table | None, cuts: dict[str, dt.date]) -> pa.Table:
    """Blocks' rows (``ticker``, ``date``, …) with each ticker's rows from its cut on replaced
    by its delta rows (same columns)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not cuts:
        return blocks
    tickers = pa.array(list(cuts), pa.string())
    days = pa.array(list(cuts.values()), pa.date32())
    position = pc.index_in(blocks.column("ticker"), value_set=tickers)
    superseded = pc.greater_equal(blocks.column("date"), pc.take(days, position))
    kept = blocks.filter(pc.invert(pc.fill_null(superseded, False)))
    if delta is None or delta.num_rows == 0:
        return kept
    return pa.concat_tables([kept, delta.select(kept.column_names).cast(kept.schema)])
