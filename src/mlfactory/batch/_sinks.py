"""Where scored partitions go: a parquet folder (atomic) or a SQL table (a transaction each).

A parquet output is replaced (``--overwrite``) only when it is provably a previous
``mlfactory predict`` output: a folder holding predict's marker file and nothing but its part
files, which is not, and does not contain, a folder that matters (``/``, the user's home,
``MLFACTORY_HOME``, the artifact store, the working directory, the input). Anything else is
refused before any file is created, and a replaced output is removed file by file (only the
names checked), never with a recursive delete.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from mlfactory._batch_tasks import part_name
from mlfactory.db import get_engine
from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.settings import mask_url

__all__ = ["MARKER", "ObjectStoreSink", "ParquetSink", "Refused", "SqlSink"]

logger = get_logger(__name__)

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PART = re.compile(r"^part-\d{5,}\.parquet$")
MARKER = "_MLFACTORY_PREDICT"  # "_" prefix: parquet readers (pyarrow, Dask, Spark) skip it
WRITER = "mlfactory predict"


class Refused(DataError):
    """A command was refused before it touched anything (exit code 2)."""

    exit_code = 2


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _contains(folder: Path, path: Path) -> bool:
    return folder == path or folder in path.parents


def _is_predict_marker(path: Path) -> bool:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 16:
            return False
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("writer") == WRITER


def _own_entries(folder: Path) -> tuple[list[str], list[str]]:
    """(predict's own files, anything else) in ``folder``; nothing is followed or recursed."""
    own, other = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            regular = entry.is_file(follow_symlinks=False)
            if regular and (entry.name == MARKER or _PART.match(entry.name)):
                own.append(entry.name)
            else:
                other.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    return own, sorted(other)


class ParquetSink:
    """Part files written to a hidden temp folder beside ``path``, renamed into place at the end.

    Readers never see a half-written output: until :meth:`commit` the folder does not exist
    (or still holds the previous output when ``overwrite``); :meth:`abort` removes the temp folder.
    Every check runs in the constructor; the temp folder is created on first use of
    :attr:`staging`. ``protected`` lists (folder, what it is) pairs that an overwritten output may
    neither be nor contain.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        overwrite: bool = False,
        protected: Iterable[tuple[Path | str, str]] = (),
    ) -> None:
        self.given = Path(path)
        if self.given.suffix.lower() == ".csv":
            raise DataError(f"output {self.given}: expected a parquet folder path, not .csv")
        # symlinks resolved once: every check and every rename acts on the real folder
        self.path = _real(self.given)
        self.overwrite = overwrite
        self.protected = [(_real(Path(p)), what) for p, what in protected]
        self._tmp: Path | None = None
        self.rows = 0
        if os.path.lexists(self.given) or os.path.lexists(self.path):
            if not overwrite:
                raise Refused(f"output {self.given} already exists; remove it or pass --overwrite")
            self._check_replaceable()

    def _refuse(self, why: str) -> Refused:
        shown = str(self.given)
        if self.path != Path(os.path.abspath(self.given)):
            shown += f" (resolves to {self.path})"
        return Refused(
            f"refusing to overwrite output {shown}: {why}; nothing was changed, "
            "choose another --output"
        )

    def _check_replaceable(self) -> list[str]:
        """Predict's own file names in the existing output, or :class:`Refused` saying why not."""
        for folder, what in self.protected:
            if self.path == folder:
                raise self._refuse(f"it is {what}")
            if _contains(self.path, folder):
                raise self._refuse(f"it contains {what} ({folder})")
        if not os.path.lexists(self.path):
            raise self._refuse("it is a dangling symbolic link")
        if not self.path.is_dir():
            raise self._refuse("it is a file, not a folder written by mlfactory predict")
        if not _is_predict_marker(self.path / MARKER):
            raise self._refuse(f"it was not written by mlfactory predict (no {MARKER} marker)")
        own, other = _own_entries(self.path)
        if other:
            shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
            raise self._refuse(f"it holds {shown} besides the part files mlfactory predict wrote")
        return own

    @property
    def staging(self) -> Path:
        """The hidden folder part files go to until :meth:`commit` (tasks may write there)."""
        if self._tmp is None:
            tmp = self.path.parent / f".{self.path.name}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp.mkdir()
            except OSError as exc:
                raise DataError(
                    f"cannot write output {self.given}: creating {tmp} failed ({exc.strerror})"
                ) from None
            self._tmp = tmp
        return self._tmp

    def write(self, index: int, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.staging / part_name(index), index=False)
        self.rows += len(frame)

    def add_written(self, rows: int) -> None:
        """Count a part file a task wrote into :attr:`staging` itself."""
        self.rows += rows

    def commit(self, meta: dict[str, Any] | None = None) -> None:
        staging = self.staging
        marker = {"writer": WRITER, "rows": self.rows, **(meta or {})}
        (staging / MARKER).write_text(json.dumps(marker, default=str, indent=1) + "\n")
        old, own = None, []
        if os.path.lexists(self.path):
            if not self.overwrite:
                raise Refused(f"output {self.given} appeared while scoring; nothing was replaced")
            own = self._check_replaceable()  # again: it may have changed while scoring
            old = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
            try:
                self.path.rename(old)
            except OSError as exc:  # a mount point, a busy folder: nothing was moved
                raise DataError(f"cannot replace output {self.given}: {exc.strerror}") from None
        try:
            staging.rename(self.path)
        except OSError as exc:
            if old is not None:
                old.rename(self.path)  # the previous output back in place
            raise DataError(f"cannot write output {self.given}: {exc.strerror}") from None
        self._tmp = None
        if old is not None:
            for name in own:  # only the names checked; anything that appeared since stays
                with contextlib.suppress(FileNotFoundError):
                    (old / name).unlink()
            try:
                old.rmdir()
            except OSError as exc:
                logger.warning("left the previous output in %s: %s", old, exc.strerror)

    def abort(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def describe(self) -> str:
        return str(self.given)


class ObjectStoreSink:
    """Part files uploaded whole under an ``s3://`` prefix, the marker written last.

    An object store cannot rename a folder: the output is complete when its ``_MLFACTORY_PREDICT``
    marker exists (readers of predict's output check it), and :meth:`abort` deletes the parts
    written. A prefix that already holds objects is refused (``--overwrite`` replaces only a
    previous predict output: its marker, then its part files, are deleted first).
    """

    def __init__(self, url: str, settings: Any, *, overwrite: bool = False) -> None:
        from mlfactory.storage import open_location

        self.location = open_location(url, settings)
        self.rows = 0
        self._written: list[str] = []
        existing = self._existing()
        if existing:
            names = [name.rsplit("/", 1)[-1] for name in existing]
            own = MARKER in names and all(n == MARKER or _PART.match(n) for n in names)
            if not overwrite:
                raise Refused(
                    f"output {self.location.shown} already exists; remove it or pass --overwrite"
                )
            if not own:
                raise Refused(
                    f"refusing to overwrite output {self.location.shown}: it holds objects "
                    "mlfactory predict did not write; nothing was changed, choose another --output"
                )
            self._delete([p for p in existing if p.endswith("/" + MARKER)])  # invalid first
            self._delete([p for p in existing if not p.endswith("/" + MARKER)])

    def _existing(self) -> list[str]:
        from mlfactory.storage import translated

        with translated(self.location, "checking the output"):
            try:
                return sorted(self.location.fs.find(self.location.path))
            except FileNotFoundError:
                return []

    def _delete(self, paths: list[str]) -> None:
        from mlfactory.storage import translated

        if paths:
            with translated(self.location, "deleting the previous output"):
                self.location.fs.rm(paths)

    def write(self, index: int, frame: pd.DataFrame) -> None:
        import io

        from mlfactory.storage import write_bytes

        sink = io.BytesIO()
        frame.to_parquet(sink, index=False)
        target = self.location.child(part_name(index))
        write_bytes(target, sink.getvalue())
        self._written.append(target.path)
        self.rows += len(frame)

    def add_written(self, rows: int) -> None:  # pragma: no cover - tasks never write here
        self.rows += rows

    def commit(self, meta: dict[str, Any] | None = None) -> None:
        from mlfactory.storage import write_bytes

        marker = {"writer": WRITER, "rows": self.rows, **(meta or {})}
        text = json.dumps(marker, default=str, indent=1) + "\n"
        write_bytes(self.location.child(MARKER), text.encode("utf-8"))

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._delete(self._written)
        self._written = []

    def describe(self) -> str:
        return self.location.shown


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

    def check(self, columns: Sequence[str]) -> None:
        """Refuse an existing table that lacks output columns, before anything is written."""
        from mlfactory.batch._sql import db_error

        try:
            inspector = sa.inspect(self.engine)
            if not inspector.has_table(self.table):
                return
            have = [str(c["name"]) for c in inspector.get_columns(self.table)]
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"cannot inspect {self.describe()}: {db_error(exc)}") from None
        missing = [c for c in columns if c not in have]
        if missing:
            raise Refused(
                f"{self.describe()} exists with columns {', '.join(have)}; it lacks "
                f"{', '.join(missing)} of the output ({', '.join(columns)}): choose another "
                "--table; nothing was written"
            )

    def write(self, index: int, frame: pd.DataFrame) -> None:
        from mlfactory.batch._sql import db_error

        try:
            with self.engine.begin() as connection:
                frame.to_sql(
                    self.table, connection, if_exists="append", index=False, chunksize=10_000
                )
        except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:  # text holds the rows
            raise DataError(
                f"writing partition {index} to {self.describe()} failed ({self.rows:,} rows "
                f"written before it): {db_error(exc)}"
            ) from None
        self.rows += len(frame)

    def commit(self, meta: dict[str, Any] | None = None) -> None:
        return None

    def abort(self) -> None:
        return None

    def describe(self) -> str:
        return f"table {self.table} in {mask_url(self.url)}"

    def exists(self) -> bool:
        return sa.inspect(self.engine).has_table(self.table)
