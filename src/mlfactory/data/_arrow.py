"""Arrow arrays to and from numpy buffers, without ``pa.array`` or ``Array.to_numpy``.

Both import pandas on their first call (to ask whether an object is a pandas one): 0.25 s in a
process that needs no pandas otherwise, as ``featurize`` and each of its worker processes.
These wrap the buffers directly (no copy of the values when there is no null).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

__all__ = [
    "date_days",
    "flag_array",
    "float_array",
    "float_values",
    "index_array",
    "jemalloc_pool",
    "null_mask",
    "repeated_strings",
]


def _validity(missing: np.ndarray) -> tuple[pa.Buffer | None, int]:
    nulls = int(np.count_nonzero(missing))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(~missing, bitorder="little")), nulls


def float_array(values: np.ndarray) -> pa.Array:
    """float64 values, NaN as null (what ``pa.array(values, from_pandas=True)`` gives)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    validity, nulls = _validity(np.isnan(values))
    return pa.Array.from_buffers(
        pa.float64(), len(values), [validity, pa.py_buffer(values)], null_count=nulls
    )


def flag_array(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    """int8 values, null where ``missing`` (what ``pa.array(values, pa.int8(), mask=missing)``
    gives)."""
    values = np.ascontiguousarray(values, dtype=np.int8)
    validity, nulls = _validity(np.asarray(missing, dtype=bool))
    return pa.Array.from_buffers(
        pa.int8(), len(values), [validity, pa.py_buffer(values)], null_count=nulls
    )


def index_array(values: np.ndarray) -> pa.Array:
    """Row positions (int64), as ``Table.take`` wants them."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def repeated_strings(values: Sequence[str], counts: Sequence[int]) -> pa.Array:
    """A string array holding each of ``values`` ``counts`` times in turn."""
    encoded = [value.encode() for value in values]
    lengths = np.repeat(np.fromiter(map(len, encoded), np.int64, len(encoded)), counts)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(lengths)
    data = b"".join(text * count for text, count in zip(encoded, counts, strict=True))
    return pa.Array.from_buffers(
        pa.string(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _joined(parts: list[np.ndarray], dtype) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([np.empty(0, dtype), *parts])


def null_mask(array: pa.Array) -> np.ndarray:
    """True where ``array`` is null."""
    validity = array.buffers()[0]
    if validity is None or array.null_count == 0:
        return np.zeros(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)] == 0


def _values(array: pa.Array, dtype) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    if len(array) == 0:
        return np.empty(0, dtype)
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * width
    )


def float_values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A float64 column as numpy, nulls as NaN (what ``to_numpy(zero_copy_only=False)``
    gives)."""
    if column.type != pa.float64():
        column = column.cast(pa.float64())
    parts = []
    for chunk in _chunks(column):
        values = _values(chunk, np.float64)
        if chunk.null_count:
            values = np.where(null_mask(chunk), np.nan, values)
        parts.append(values)
    return _joined(parts, np.float64)


def date_days(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A date32 column without nulls as int32 days since 1970-01-01."""
    if column.type != pa.date32() or column.null_count:
        raise ValueError(f"expected a date32 column without nulls, got {column.type}")
    return _joined([_values(chunk, np.int32) for chunk in _chunks(column)], np.int32)


@contextmanager
def jemalloc_pool() -> Iterator[None]:
    """Arrow allocates from jemalloc meanwhile, when this pyarrow has it and the user chose no
    pool (``ARROW_DEFAULT_MEMORY_POOL``); the previous pool after.

    A new day's featurize allocates ~500 small tables in a process that already did much
    (a line's ingest, training): with mimalloc, pyarrow's default, it took 0.38-0.63 s there,
    with jemalloc 0.27-0.32 s (benchmarks/line.py --prices 500x24, alternated; a full build
    took the same with both). Buffers keep the pool they came from, so switching is safe.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or (
        "jemalloc" not in pa.supported_memory_backends()  # pyarrow's Windows wheels
    ):
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.jemalloc_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
