"""What runs around each fit on a Dask worker: nested joblib in place, a NumPy-friendly malloc.

This module is unpickled on every worker before its first task, so it imports nothing heavy
(importing ``mlfactory.training`` would pull MLflow into each worker: ~2.5 s before the first fit).

glibc allocator thresholds:

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed memory goes
back to the OS. Setting that variable also turns off glibc's *dynamic* mmap threshold, so every
array above 128 KiB is a fresh ``mmap`` (page faults, zeroed pages) and every free of one is a
``munmap``; the heap top is trimmed at 64 KiB too. A fit allocates and frees column-sized arrays
thousands of times: on the credit pipeline each fit took 2x as long on a worker as in a loky worker
(docs/benchmarks.md, "Tuning"). While a fit runs we raise both thresholds; when the last fit on the
worker ends we put Dask's values back and hand the freed memory to the OS, as Dask intends.

Nothing happens off glibc, or when the process was not started with such a variable (glibc's
dynamic thresholds are then on and already right).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["InPlaceTask", "fit_friendly_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT_MMAP_THRESHOLD = 128 * 1024
_FIT_MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit
_FIT_TRIM_THRESHOLD = 64 * 2**20

_lock = threading.Lock()
_active = 0


def _fixed_thresholds() -> tuple[int, int] | None:
    """(trim, mmap) thresholds fixed by the environment, or None when glibc's dynamic ones apply."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    mmap = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    if trim is None and mmap is None:
        return None
    try:
        return (
            int(trim) if trim else _FIT_TRIM_THRESHOLD,
            int(mmap) if mmap else _GLIBC_DEFAULT_MMAP_THRESHOLD,
        )
    except ValueError:
        return None


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


@contextmanager
def fit_friendly_allocator() -> Iterator[None]:
    """Raise glibc's trim and mmap thresholds for the block; restore them (and trim) after."""
    fixed = _fixed_thresholds()
    libc = _glibc() if fixed is not None else None
    if libc is None or fixed is None:
        yield
        return
    global _active
    with _lock:
        _active += 1
        if _active == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, _FIT_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _FIT_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                trim, mmap = fixed
                libc.mallopt(_M_MMAP_THRESHOLD, mmap)
                libc.mallopt(_M_TRIM_THRESHOLD, trim)
                libc.malloc_trim(0)


class InPlaceTask:
    """A joblib task whose own joblib calls (a ColumnTransformer's, a forest's) run in place.

    joblib's Dask backend runs every task under ``parallel_config(backend="dask")``, where a
    nested ``Parallel(n_jobs=None)`` means *every core of the cluster*: each fold's preprocessing
    and scoring turned into more cluster tasks that shipped column slices of the data between the
    workers (1 133 tasks instead of 50 for a 10 x 5 grid; see docs/benchmarks.md). The task also
    runs under :func:`fit_friendly_allocator`.
    """

    def __init__(self, function: Any) -> None:
        self.function = function
        self.__name__ = getattr(function, "__name__", type(function).__name__)  # Dask task keys

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import joblib

        with joblib.parallel_config(backend="sequential"), fit_friendly_allocator():
            return self.function(*args, **kwargs)
