"""Small I/O helpers shared by the loaders and synthetic writers: atomic writes, file checks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mlfactory.exceptions import DataError

__all__ = ["atomic_write", "read_csv_checked", "require_columns", "require_file"]


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A reader never sees a half-written file and a failure leaves no partial output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def require_file(path: Path, how_to_get: str) -> Path:
    """Return ``path`` if it is a file, else raise :class:`DataError` saying how to get it."""
    if not path.is_file():
        raise DataError(f"data file {path} not found. {how_to_get}")
    return path


def read_csv_checked(path: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with parse failures turned into a :class:`DataError` naming the file."""
    from mlfactory._tables import reading_error

    try:
        return pd.read_csv(path, **kwargs)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise reading_error(path, exc, "data file") from exc


def require_columns(frame: pd.DataFrame, expected: list[str] | tuple[str, ...], where: str) -> None:
    """Raise :class:`DataError` naming ``where`` and the expected columns it lacks."""
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise DataError(
            f"{where} lacks expected column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, frame.columns))}"
        )
