"""Where scored partitions go: a parquet folder (atomic) or a SQL table (a transaction each)."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from mlfactory._batch_tasks import part_name
from mlfactory.db import get_engine
from mlfactory.exceptions import DataError
from mlfactory.settings import mask_url

__all__ = ["ParquetSink", "SqlSink"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ParquetSink:
    """Part files written to a hidden temp folder beside ``path``, renamed into place at the end.

    Readers never see a half-written output: until :meth:`commit` the folder does not exist
    (or still holds the previous output when ``overwrite``); :meth:`abort` removes the temp folder.
    """

    def __init__(self, path: Path | str, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise DataError(f"output {self.path} already exists; remove it or pass --overwrite")
        if self.path.suffix.lower() == ".csv":
            raise DataError(f"output {self.path}: expected a parquet folder path, not .csv")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.parent / f".{self.path.name}.tmp-{uuid.uuid4().hex[:8]}"
        self._tmp.mkdir()
        self.rows = 0

    @property
    def staging(self) -> Path:
        """The hidden folder part files go to until :meth:`commit` (tasks may write there)."""
        return self._tmp

    def write(self, index: int, frame: pd.DataFrame) -> None:
        frame.to_parquet(self._tmp / part_name(index), index=False)
        self.rows += len(frame)

    def add_written(self, rows: int) -> None:
        """Count a part file a task wrote into :attr:`staging` itself."""
        self.rows += rows

    def commit(self) -> None:
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
            self.path.rename(old)
        self._tmp.rename(self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def describe(self) -> str:
        return str(self.path)


class SqlSink:
    """Appends each partition to ``table`` in its own transaction (all or nothing per partition)."""

    def __init__(self, url: str, table: str) -> None:
        if not _TABLE.match(table):
            raise DataError(
                f"invalid table name {table!r}: expected letters, digits and underscores, "
                "starting with a letter or underscore (at most 63 characters)"
            )
        self.url, self.table = url, table
        self.engine = get_engine(url)
        self.rows = 0

    def write(self, index: int, frame: pd.DataFrame) -> None:
        with self.engine.begin() as connection:
            frame.to_sql(self.table, connection, if_exists="append", index=False, chunksize=10_000)
        self.rows += len(frame)

    def commit(self) -> None:
        return None

    def abort(self) -> None:
        return None

    def describe(self) -> str:
        return f"table {self.table} in {mask_url(self.url)}"

    def exists(self) -> bool:
        return sa.inspect(self.engine).has_table(self.table)
