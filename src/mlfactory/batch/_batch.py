"""Out-of-core batch scoring: Dask partitions in, scored partitions out, one at a time.

The model is loaded (and its file verified) once through the registry. Partitions are read by
Dask (parquet row groups/files or CSV blocks) or streamed from a SQL query in chunks, scored a
bounded window at a time, and written as they finish, so memory holds a few partitions, never
the whole input. On a Dask cluster the model is scattered to every worker once.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mlfactory import __version__
from mlfactory._batch_tasks import read_row_groups, score_checked, score_into_folder, score_task
from mlfactory.batch._score import check_columns, output_columns
from mlfactory.batch._sinks import ObjectStoreSink, ParquetSink, SqlSink
from mlfactory.batch._sql import check_query, db_error, read_only_connection, sqlite_file
from mlfactory.exceptions import ConfigError, DataError
from mlfactory.logs import get_logger
from mlfactory.registry import InputColumn, LoadedModel, load_model
from mlfactory.settings import Settings
from mlfactory.storage import is_remote

__all__ = ["LOCAL_SCHEDULERS", "BatchReport", "ProgressCallback", "batch_predict"]

logger = get_logger(__name__)

LOCAL_SCHEDULERS = ("threads", "synchronous")
DEFAULT_SQL_CHUNK_ROWS = 100_000
ProgressCallback = Callable[[int, int | None, int], None]  # (partitions done, total, rows done)


@dataclass
class BatchReport:
    """What one batch scoring run did."""

    model: str
    version: str
    rows: int
    partitions: int
    output: str
    seconds: float
    scored_at: datetime
    columns: list[str] = field(default_factory=list)
    inference: str = "scikit-learn"  # "onnx" (the verified graph) or "scikit-learn: why"
    inference_reason: str = ""  # why that path scored: the graph's check, or the fallback reason

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def _resolve_scheduler(scheduler: str | None, settings: Settings) -> str:
    chosen = (scheduler or settings.dask_scheduler_address or "threads").strip()
    if chosen in LOCAL_SCHEDULERS or "://" in chosen:
        return chosen
    raise ConfigError(
        f"invalid Dask scheduler {chosen!r}: expected one of {', '.join(LOCAL_SCHEDULERS)} "
        "or a scheduler address such as tcp://10.0.0.5:8786"
    )


def _bad_number(exc: BaseException) -> str | None:
    """The CSV reader's "could not convert string to float: 'x'" as "'x'", else ``None``."""
    words = "could not convert string to float: "
    text = str(exc) if isinstance(exc, ValueError) else ""
    return text.split(words, 1)[1].splitlines()[0] if words in text else None


_SAMPLE_ROWS = 2_000  # rows of the first CSV file that decide how its numbers are written


def _read_dtypes(inputs: Sequence[InputColumn], file: Path, sep: str) -> dict[str, str]:
    """CSV dtypes from the model schema, so a block's guess never disagrees with another's.

    A numeric column whose first rows are plain numbers is parsed as float64 by the CSV reader
    (the fast path); one written otherwise (``"1,234.5"``, ``"3,5"``, ``"?"``) and boolean columns
    are read as text and converted as training read them
    (:func:`mlfactory._conform.conform_inputs`).
    """
    from mlfactory._conform import reads_as_plain_numbers
    from mlfactory._tables import csv_header

    numeric = {"double", "float", "long", "integer"}
    candidates = [c.name for c in inputs if c.type in numeric | {"boolean"}]
    if not candidates:
        return {}
    header = set(csv_header(file, sep))
    sample = pd.read_csv(
        file,
        sep=sep,
        nrows=_SAMPLE_ROWS,
        dtype=dict.fromkeys(candidates, "object"),
        usecols=[name for name in candidates if name in header],
    )
    dtypes = {}
    for column in inputs:
        if column.name not in sample.columns:
            continue
        if column.type in numeric:
            values = sample[column.name]
            plain = pd.to_numeric(values, errors="coerce").notna().sum() == values.notna().sum()
            # "1.234" is 1234 in a column training read with a decimal comma: read as text
            fast = plain and reads_as_plain_numbers(column.number_format)
            dtypes[column.name] = "float64" if fast else "object"
        elif column.type == "boolean":
            dtypes[column.name] = "object"
    return dtypes


Piece = tuple[str, list[int]]  # a parquet file and consecutive row groups of it


def _row_group_runs(meta: Any, partition_rows: int | None) -> list[list[int]]:
    """A file's row groups in runs of about ``partition_rows`` rows (one run per group when
    None): each run is read and scored as one partition."""
    runs: list[list[int]] = []
    group: list[int] = []
    rows = 0
    for index in range(meta.num_row_groups):
        size = meta.row_group(index).num_rows
        if group and (partition_rows is None or rows + size > partition_rows):
            runs.append(group)
            group, rows = [], 0
        group.append(index)
        rows += size
    if group:
        runs.append(group)
    return runs


def _parquet_pieces(files: Sequence[str], partition_rows: int | None) -> list[Piece]:
    """Partitions as (file, row groups): each row group alone, or consecutive row groups of a
    file merged up to ``partition_rows`` (a larger row group is one partition by itself)."""
    import pyarrow.parquet as pq

    pieces: list[Piece] = []
    for file in files:
        meta = pq.ParquetFile(file).metadata
        pieces.extend((file, group) for group in _row_group_runs(meta, partition_rows))
    return pieces


def _file_partitions(
    path: Path,
    inputs: Sequence[InputColumn],
    key_columns: Sequence[str],
    partition_rows: int | None,
) -> tuple[list[Any], int | None]:
    """Validated Dask partitions (delayed) of a parquet file/folder or CSV file, and their count.

    Parquet partitions follow row groups, so each is read exactly once, by one task; CSV files
    are cut into byte blocks sized for ``partition_rows``.
    """

    if not path.exists():
        raise DataError(f"input {path} not found")
    suffix = path.suffix.lower()
    is_csv = suffix == ".csv" or (path.is_dir() and any(path.glob("*.csv")))
    is_parquet = suffix in (".parquet", ".pq") or (path.is_dir() and not is_csv)
    if not (is_csv or is_parquet):
        raise DataError(f"input {path}: expected a .parquet file, a parquet folder or a .csv file")
    if is_csv:
        return _csv_partitions(path, inputs, key_columns, partition_rows)
    import pyarrow.dataset as pads

    from mlfactory._tables import check_unique_columns, reading_error

    try:
        dataset = pads.dataset(str(path), format="parquet")
        available = list(dataset.schema.names)
        files = list(dataset.files)
    except (OSError, ValueError) as exc:
        raise reading_error(path, exc, "input") from None
    if not files:
        raise DataError(f"input {path} holds no parquet files")
    check_unique_columns(available, f"input {path}")
    check_columns(available, inputs, key_columns, f"input {path}")
    wanted = list(dict.fromkeys([*key_columns, *(c.name for c in inputs if c.name in available)]))
    # loaders, not Delayed reads: the scoring task reads its own row groups, so a partition is
    # never shipped from the worker that read it to the one that scores it
    pieces = _parquet_pieces(files, partition_rows)
    parts = [functools.partial(read_row_groups, file, groups, wanted) for file, groups in pieces]
    return parts, len(parts)


def _remote_partitions(
    url: str,
    inputs: Sequence[InputColumn],
    key_columns: Sequence[str],
    partition_rows: int | None,
    settings: Settings,
) -> tuple[list[Any], int | None]:
    """Partitions of parquet files on an object store: ``s3://…/*.parquet``, one file or a
    prefix; row groups read by the task that scores them, with the store's options only."""
    import pyarrow.parquet as pq

    from mlfactory.storage import open_location, storage_error

    location = open_location(url, settings)
    fs = location.fs
    try:
        if any(c in location.path for c in "*?["):
            files = sorted(fs.glob(location.path))
        elif fs.isdir(location.path):
            files = sorted(f for f in fs.find(location.path) if f.endswith((".parquet", ".pq")))
        else:
            files = [location.path] if fs.exists(location.path) else []
        files = [f for f in files if not f.rsplit("/", 1)[-1].startswith((".", "_"))]
        if any(f.lower().endswith(".csv") for f in files) or url.lower().endswith(".csv"):
            raise DataError(f"input {location.shown}: expected parquet on an object store")
        if not files:
            raise DataError(f"input {location.shown} not found (no parquet objects)")
        urls = [f"s3://{f}" for f in files]
        schemas, pieces = [], []
        for file, address in zip(files, urls, strict=True):
            with fs.open(file, "rb") as handle:
                meta = pq.ParquetFile(handle).metadata
            schemas.append(meta.schema.to_arrow_schema())
            pieces.extend((address, group) for group in _row_group_runs(meta, partition_rows))
    except DataError:
        raise
    except Exception as exc:
        raise storage_error(exc, location, "reading the input") from None
    available = list(schemas[0].names)
    check_columns(available, inputs, key_columns, f"input {location.shown}")
    wanted = list(dict.fromkeys([*key_columns, *(c.name for c in inputs if c.name in available)]))
    options = location.options  # an endpoint at most: workers bring their own credentials
    parts = [
        functools.partial(read_row_groups, file, groups, wanted, options) for file, groups in pieces
    ]
    return parts, len(parts)


def _csv_partitions(
    path: Path,
    inputs: Sequence[InputColumn],
    key_columns: Sequence[str],
    partition_rows: int | None,
) -> tuple[list[Any], int | None]:
    import dask.dataframe as dd

    from mlfactory._tables import check_unique_columns, csv_header, reading_error, sniff_delimiter

    source = str(path / "*.csv") if path.is_dir() else str(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"input {path}: a folder with no .csv files in it")
    try:
        sep = sniff_delimiter(files[0])  # as the training table was read: `;` exports too
        for file in files:
            if file.stat().st_size == 0:
                raise DataError(f"input {file} is empty; expected a header row of column names")
            check_unique_columns(csv_header(file, sep), f"input {file}")
        blocksize: Any = "default"
        if partition_rows:
            with files[0].open("rb") as handle:
                sample = handle.read(1 << 20)
            per_row = max(1.0, len(sample) / max(1, sample.count(b"\n")))
            blocksize = max(1 << 16, int(partition_rows * per_row))
        dtypes = _read_dtypes(inputs, files[0], sep)
        head = dd.read_csv(source, blocksize=blocksize, dtype=dtypes, sep=sep)
    except (OSError, ValueError) as exc:
        raise reading_error(path, exc, "input") from None
    available = [str(c) for c in head.columns]
    check_columns(available, inputs, key_columns, f"input {path}")
    wanted = list(dict.fromkeys([*key_columns, *(c.name for c in inputs if c.name in available)]))
    parts = list(head[wanted].to_delayed())
    return parts, len(parts)


def _sql_partitions(
    url: str,
    query: str,
    inputs: Sequence[InputColumn],
    key_columns: Sequence[str],
    partition_rows: int | None,
) -> Iterator[pd.DataFrame]:
    """Stream a query's rows in chunks (server-side cursor) on a read-only connection; the
    first chunk is validated. Errors are the database's one-line message, never rows."""
    import sqlalchemy as sa

    with read_only_connection(url) as connection:
        streaming = connection.execution_options(stream_results=True)
        try:
            chunks = iter(
                pd.read_sql_query(
                    sa.text(query), streaming, chunksize=partition_rows or DEFAULT_SQL_CHUNK_ROWS
                )
            )
            # pandas yields one empty frame for an empty result: no rows is no chunk
            chunks = (chunk for chunk in chunks if len(chunk))
            first = next(chunks, None)
            if first is None:
                raise DataError("the query returned no rows: nothing to score, nothing written")
            check_columns([str(c) for c in first.columns], inputs, key_columns, "the query result")
            yield first
            yield from chunks
        except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
            raise DataError(f"the --sql query failed: {db_error(exc)}") from None


def _windows(parts: Iterable[Any], size: int) -> Iterator[list[tuple[int, Any]]]:
    numbered = enumerate(parts)
    while wave := list(itertools.islice(numbered, size)):
        yield wave


def _task(score: Callable, folder: str | None) -> Callable[..., Any]:
    if folder is None:
        return functools.partial(score_task, score=score)
    return functools.partial(score_into_folder, score=score, folder=folder)


def _run_local(
    parts: Iterable[Any], score: Callable[..., pd.DataFrame], model: Any, scheduler: str,
    folder: str | None,
) -> Iterator[tuple[int, pd.DataFrame | int]]:  # fmt: skip
    """Score waves of partitions with the local scheduler; the model is shared, not copied.

    With a ``folder`` the tasks also write their part files, in parallel.
    """
    import dask

    task = functools.partial(_caught, _task(score, folder))
    window = 2 * max(1, _cpu_count()) if scheduler == "threads" else 1
    for wave in _windows(parts, window):
        tasks = [dask.delayed(task)(part, model, i) for i, part in wave]
        results = dask.compute(*tasks, scheduler=scheduler)
        # raise only once the whole wave is done: no task may still be writing into the
        # staging folder when the caller removes it
        failed = next((r for r in results if isinstance(r, _Failed)), None)
        if failed is not None:
            raise failed.error
        yield from zip((i for i, _ in wave), results, strict=True)


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def _caught(task: Callable[..., Any], *args: Any) -> Any:
    try:
        return task(*args)
    except Exception as exc:
        return _Failed(exc)


def _run_distributed(
    parts: Iterable[Any], score: Callable[..., pd.DataFrame], model: Any, address: str,
    folder: str | None,
) -> Iterator[tuple[int, pd.DataFrame | int]]:  # fmt: skip
    """Scatter the model to every worker once; keep a bounded number of partitions in flight.

    When every worker sees ``folder`` (same machine or shared storage) the workers write their
    part files themselves: scored partitions no longer all travel through this process, which
    had made a second worker slower than one. Otherwise the partitions come back to be written.
    """
    from dask.delayed import Delayed
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address} ({exc}); check "
            "MLFACTORY_DASK_SCHEDULER_ADDRESS or --scheduler"
        ) from None
    try:
        if folder is not None and not all(client.run(os.path.isdir, folder).values()):
            logger.info("workers do not see %s: scored partitions come back to be written", folder)
            folder = None
        task = _task(score, folder)
        shipped = client.scatter(model, broadcast=True, hash=False)
        window = 2 * max(1, sum(client.nthreads().values()))
        numbered = enumerate(parts)
        index_of: dict[Any, int] = {}

        def submit(count: int) -> list[Any]:
            futures = []
            for i, part in itertools.islice(numbered, count):
                frame = client.compute(part) if isinstance(part, Delayed) else part
                future = client.submit(task, frame, shipped, i, pure=False)
                index_of[future.key] = i
                futures.append(future)
            return futures

        pending = as_completed(submit(window), loop=client.loop)
        try:
            for future in pending:
                yield index_of.pop(future.key), future.result()
                for extra in submit(1):
                    pending.add(extra)
        except BaseException:
            # let the partitions still running finish (at most the window) before the caller
            # removes the staging folder they write into
            for running in [f for f in pending.futures if not f.done()]:
                with contextlib.suppress(Exception):
                    running.result(timeout=300)
            raise
    finally:
        client.close()


def _distributed(model: LoadedModel) -> Callable[..., Iterator[tuple[int, pd.DataFrame | int]]]:
    """The cluster runner: a fleet's rows are grouped by segment across partitions, each
    segment's model on one worker (:mod:`mlfactory.batch._fleet`); one model is scattered."""
    from mlfactory.fleet._serve import FleetModel

    if isinstance(model.model, FleetModel):
        from mlfactory.batch._fleet import run_fleet_distributed

        return run_fleet_distributed
    return _run_distributed


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def batch_predict(
    settings: Settings,
    reference: str,
    *,
    input_path: Path | str | None = None,
    sql: str | None = None,
    output_path: Path | str | None = None,
    table: str | None = None,
    key_columns: Sequence[str] = (),
    scheduler: str | None = None,
    partition_rows: int | None = None,
    db_url: str | None = None,
    overwrite: bool = False,
    allow_pickle: bool = False,
    allow_unverified: bool = False,
    progress: ProgressCallback | None = None,
    loaded: LoadedModel | None = None,
    onnx: bool = True,
) -> BatchReport:
    """Score a file or a SQL query with a registered model into a parquet folder or a SQL table.

    Output columns: the ``key_columns``, ``prediction``, ``proba_<class>`` for classifiers,
    ``model_version`` and ``scored_at`` (one UTC timestamp for the whole run). Parquet output
    appears atomically when every partition is written; a SQL table gets one transaction per
    partition. Missing model columns are reported before anything is written.

    Nothing is destroyed or changed: ``overwrite`` replaces only a previous ``mlfactory predict``
    output (see :class:`ParquetSink`), and ``sql`` must be a single SELECT, run read-only.

    A version with a verified ONNX graph (its SHA-256 checked, as ``serve`` does) is scored by
    onnxruntime unless ``onnx`` is false; otherwise, and for fleets, by scikit-learn, the reason
    logged and reported in :attr:`BatchReport.inference` and :attr:`BatchReport.inference_reason`.
    """
    if (input_path is None) == (sql is None):
        raise ConfigError("give either --input FILE or --sql QUERY, not both or neither")
    if (output_path is None) == (table is None):
        raise ConfigError("give either --output FOLDER or --table TABLE, not both or neither")
    if partition_rows is not None and partition_rows < 1:
        raise ConfigError(f"--partition-rows must be a positive integer, got {partition_rows}")
    address = _resolve_scheduler(scheduler, settings)
    url = db_url or settings.database_url
    keys = list(dict.fromkeys(key_columns))
    query = check_query(sql) if sql is not None else None  # refused before anything runs
    sink: ParquetSink | SqlSink | ObjectStoreSink
    if output_path is not None and is_remote(output_path):
        sink = ObjectStoreSink(str(output_path), settings, overwrite=overwrite)
    elif output_path is not None:
        sink = ParquetSink(
            output_path,
            overwrite=overwrite,
            protected=_protected(settings, input_path, url if sql is not None else None),
        )
    else:
        sink = SqlSink(url, table or "")
    fleet = False
    if loaded is None:  # a fleet: each partition grouped by segment, each group its own model
        from mlfactory.fleet._serve import load_fleet_for_batch

        loaded = load_fleet_for_batch(settings, reference, address)
        fleet = loaded is not None
    model = loaded or load_model(
        settings, reference, allow_pickle=allow_pickle, allow_unverified=allow_unverified
    )
    final = model.model.steps[-1][1] if hasattr(model.model, "steps") else model.model
    classes = list(model.classes) if hasattr(final, "predict_proba") and model.classes else []
    classes = [c.item() if hasattr(c, "item") else c for c in classes]
    started, scored_at = time.perf_counter(), datetime.now(UTC)
    columns = output_columns(keys, classes)
    if isinstance(sink, SqlSink):
        sink.check(columns)  # an incompatible existing table: refused before any row is read

    stream: Iterator[pd.DataFrame] | None = None
    if input_path is not None and is_remote(input_path):
        parts, total = _remote_partitions(
            str(input_path), model.inputs, keys, partition_rows, settings
        )
    elif input_path is not None:
        parts, total = _file_partitions(Path(input_path), model.inputs, keys, partition_rows)
    else:
        stream = _sql_partitions(url, query or "", model.inputs, keys, partition_rows)
        parts, total = _peeked(stream), None  # validates the first chunk before any output exists
    scorer, score_fn, path, reason = _inference(settings, model, fleet, onnx, classes)
    score = functools.partial(
        score_fn,
        inputs=model.inputs,
        key_columns=keys,
        classes=classes,
        model_version=model.info.version,
        scored_at=scored_at,
        where=f"input {input_path}" if input_path is not None else "query",
    )
    runner = _run_local if address in LOCAL_SCHEDULERS else _distributed(model)
    done = 0
    try:
        folder = str(sink.staging) if isinstance(sink, ParquetSink) else None
        for index, result in runner(parts, score, scorer, address, folder):
            if isinstance(result, int):  # the task wrote its part file itself
                sink.add_written(result)
            else:
                sink.write(index, result)
            done += 1
            if progress is not None:
                progress(done, total, sink.rows)
        if done == 0:
            raise DataError(f"input {input_path} has no rows; nothing to score")
        sink.commit(
            {
                "mlfactory_version": __version__,
                "model": str(model.ref),
                "version": model.info.version,
                "partitions": done,
                "scored_at": scored_at.isoformat(),
                "columns": columns,
            }
        )
    except BaseException as exc:
        sink.abort()
        bad = _bad_number(exc) if input_path is not None else None
        if bad is not None:  # the CSV reader, past the rows that chose float64
            raise DataError(
                f"input {input_path}: {bad} where the model expects a number; fix or blank "
                "that value"
            ) from None
        raise
    finally:
        if stream is not None:
            stream.close()  # the read-only connection is closed now, not when collected
    seconds = time.perf_counter() - started
    logger.info(
        "scored %d rows in %d partitions with %s version %s (%s) into %s (%.0f rows/s)",
        sink.rows,
        done,
        model.ref,
        model.info.version,
        "ONNX" if path == "onnx" else "scikit-learn",
        sink.describe(),
        sink.rows / seconds,
    )
    return BatchReport(
        str(model.ref),
        model.info.version,
        sink.rows,
        done,
        sink.describe(),
        seconds,
        scored_at,
        columns,
        path if path == "onnx" else f"{path}: {reason}",
        reason,
    )


def _inference(
    settings: Settings, model: LoadedModel, fleet: bool, onnx: bool, classes: list[Any]
) -> tuple[Any, Callable[..., pd.DataFrame], str, str]:
    """``(model, score function, path, reason)``: the verified ONNX graph (path ``onnx``) when
    the version has one (a single model only: a fleet's segments are scored by scikit-learn),
    else the pipeline (path ``scikit-learn``); the choice and its reason are logged."""
    if fleet:
        reason = "a fleet's segment models are scored by scikit-learn"
    elif not onnx:
        reason = "ONNX disabled (--no-onnx)"
    else:
        from mlfactory._batch_compiled import CompiledModel, score_compiled
        from mlfactory.registry._compile import load_compiled

        model_bytes, reason = load_compiled(settings, model)
        if model_bytes is not None:
            import numpy as np

            final = model.model.steps[-1][1] if hasattr(model.model, "steps") else model.model
            labels = getattr(final, "classes_", None)
            dtype = np.asarray(labels).dtype if labels is not None else np.float64
            compiled = CompiledModel(model_bytes, model.model, dtype, proba=bool(classes))
            try:
                outputs = len(compiled.session().get_outputs())
            except Exception as exc:
                reason = f"fallback: cannot load the ONNX graph: {str(exc).strip()[:200]}"
            else:
                if not classes or outputs > 1:
                    logger.info("scoring %s with ONNX: %s", model.ref, reason)
                    return compiled, score_compiled, "onnx", reason
                reason = "fallback: the ONNX graph has no probabilities output"
    logger.info("scoring %s with scikit-learn: %s", model.ref, reason)
    return model.model, score_checked, "scikit-learn", reason


def _protected(
    settings: Settings, input_path: Path | str | None, sql_url: str | None
) -> list[tuple[Path, str]]:
    """Folders an overwritten ``--output`` may neither be nor contain, with what they are."""
    protected: list[tuple[Path, str]] = [(Path("/"), "the root folder")]
    with contextlib.suppress(RuntimeError, KeyError):
        protected.append((Path.home(), "your home folder"))
    protected += [(settings.home, "MLFACTORY_HOME"), (settings.artifacts_dir, "the artifact store")]
    database = sqlite_file(settings.database_url)
    if database is not None:
        protected.append((database, "the mlfactory database"))
    with contextlib.suppress(OSError):  # a working directory that was removed protects nothing
        protected.append((Path.cwd(), "the working directory"))
    if input_path is not None:
        protected.append((Path(input_path), "the input"))
    database = sqlite_file(sql_url) if sql_url is not None else None
    if database is not None:
        protected.append((database, "the input database"))
    return protected


def _peeked(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Pull the first chunk now (raising on bad input), then yield everything lazily."""
    first = next(parts)
    return itertools.chain([first], parts)
