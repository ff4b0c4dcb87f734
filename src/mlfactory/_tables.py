"""Reading a user's table file (CSV, parquet) with one-line errors naming the file.

Every command that takes a data file (``monitor drift``, ``explain --data``, ``predict``, a spec's
user table, the CSV price source) reads it through here or words its errors with
:func:`reading_error`, so an empty file, a folder, a file that is not UTF-8, a broken parquet
footer or a header that names one column twice all end as the same kind of line.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlfactory.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TABLE_SUFFIXES",
    "check_unique_columns",
    "csv_header",
    "read_table_file",
    "reading_error",
    "sniff_delimiter",
]

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_WRAPPED = "Original Message:"  # dask's wrapping of the pandas reader's error


def _reason(exc: BaseException) -> str:
    """The line of ``exc`` that says what is wrong (dask wraps pandas' message in two lines)."""
    text = str(exc).strip()
    if _WRAPPED in text:
        text = text.split(_WRAPPED, 1)[1].strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def reading_error(path: object, exc: BaseException, what: str = "file") -> DataError:
    """A :class:`DataError` of one line naming ``path`` and what is wrong with it."""
    import pandas as pd

    if isinstance(exc, IsADirectoryError):
        return DataError(f"{what} {path}: is a folder, expected a .csv or .parquet file")
    if isinstance(exc, FileNotFoundError):
        return DataError(f"{what} {path} not found")
    if isinstance(exc, UnicodeDecodeError):
        return DataError(
            f"{what} {path}: not UTF-8 text (it holds byte 0x{exc.object[exc.start]:02x}); "
            "save the CSV as UTF-8"
        )
    if isinstance(exc, pd.errors.EmptyDataError) or "No columns to parse" in str(exc):
        return DataError(f"{what} {path} is empty; expected a header row of column names")
    return DataError(f"cannot read {what} {path}: {_reason(exc)}")


def check_unique_columns(names: Sequence[object], where: str) -> None:
    """Raise :class:`DataError` when a column name appears more than once: readers would keep
    one of them (parquet) or rename the next to ``name.1`` (pandas' CSV reader) without a word."""
    repeated = [name for name, count in Counter(map(str, names)).items() if count > 1]
    if repeated:
        shown = ", ".join(repr(name) for name in repeated)
        raise DataError(
            f"{where}: column name(s) {shown} appear more than once; names must be unique"
        )


def csv_header(path: Path | str, sep: str = ",") -> list[str]:
    """The column names of a CSV file's first row, as written (no renaming)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.reader(handle, delimiter=sep):
            return [name.strip() for name in row]
    return []


def sniff_delimiter(path: Path, sample_bytes: int = 1 << 16) -> str:
    """``,``, ``;``, tab or ``|``: the one that splits the header and first lines alike.

    Spreadsheets in locales with a decimal comma export CSV with ``;``; reading such a file with
    ``,`` would give one column of text.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(sample_bytes)
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if len(lines) > 1 and not sample.endswith("\n") and len(sample) == sample_bytes:
        lines = lines[:-1]  # the last line may be cut
    best, best_columns = ",", 1
    for delimiter in (",", ";", "\t", "|"):
        widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(widths) == 1 and (columns := widths.pop()) > best_columns:
            best, best_columns = delimiter, columns
    return best


def read_table_file(
    path: Path, what: str = "file", *, sep: str | None = None, text_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """The frame in a ``.csv``/``.parquet``/``.pq`` file; :class:`DataError` of one line
    otherwise (missing, a folder, unsupported type, empty, unreadable, repeated column names).

    ``sep``: the CSV delimiter (default: :func:`sniff_delimiter`'s, as a user table is read).
    ``text_columns``: CSV columns kept as text, not guessed as numbers (``"1.234"`` in a
    decimal-comma column is 1234, which the caller reads).
    """
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"{what} {path}: unsupported file type {path.suffix or '(none)'!r}; expected one of "
            f"{', '.join(TABLE_SUFFIXES)}"
        )
    if path.is_dir():
        raise reading_error(path, IsADirectoryError(str(path)), what)
    if not path.exists():
        raise reading_error(path, FileNotFoundError(str(path)), what)
    try:
        if suffix == ".csv":
            sep = sep or sniff_delimiter(path)
            header = csv_header(path, sep)
            check_unique_columns(header, f"{what} {path}")
            text = {name: "object" for name in text_columns if name in header}
            return pd.read_csv(path, sep=sep, dtype=text or None)
        import pyarrow.parquet as pq

        check_unique_columns(pq.read_schema(path).names, f"{what} {path}")
        return pd.read_parquet(path)
    except DataError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise reading_error(path, exc, what) from exc
