"""``mlfactory predict``: batch scoring of a file or a SQL query with a registered model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlfactory.cli._common import console, current_settings
from mlfactory.exceptions import SpecError

if TYPE_CHECKING:
    from mlfactory.batch import BatchReport


def _keys(text: str | None) -> list[str]:
    if text is None:
        return []
    keys = [item.strip() for item in text.split(",") if item.strip()]
    if not keys:
        raise SpecError(f"empty --key-columns {text!r}: expected comma-separated column names")
    return keys


def _inference_label(report: BatchReport) -> str:
    """Which path scored, in the summary's words: compiled (ONNX) or scikit-learn."""
    return "compiled (ONNX)" if report.inference == "onnx" else "scikit-learn"


def predict_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="Registered model: NAME (its champion), NAME@alias or NAME/version.",
            show_default=False,
        ),
    ],
    input_path: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="Rows to score: a .parquet file, a folder of parquet files, or a .csv file; "
            "on an object store s3://bucket/prefix/*.parquet (or a file, or a prefix).",
            show_default=False,
        ),
    ] = None,
    sql: Annotated[
        str | None,
        typer.Option(
            "--sql",
            help="Rows to score: one SELECT (or WITH ... SELECT) query, run read-only on the "
            "database (--db-url or the settings').",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="Parquet folder to write (part files appear all at once when scoring ends); "
            "s3://bucket/prefix on an object store (complete when its _MLFACTORY_PREDICT marker "
            "is written, last).",
            show_default=False,
        ),
    ] = None,
    table: Annotated[
        str | None,
        typer.Option(
            "--table",
            help="SQL table to append to (created if absent; one transaction per partition).",
            show_default=False,
        ),
    ] = None,
    key_columns: Annotated[
        str | None,
        typer.Option(
            "--key-columns",
            help="Comma-separated input columns copied to the output to identify rows (a,b).",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler: threads, synchronous or an address such as "
            "tcp://10.0.0.5:8786 (default: MLFACTORY_DASK_SCHEDULER_ADDRESS, else threads).",
            show_default=False,
        ),
    ] = None,
    partition_rows: Annotated[
        int | None,
        typer.Option(
            "--partition-rows",
            min=1,
            help="Rows per partition (default: one per parquet file/row group, 64 MB CSV "
            "blocks, 100,000 rows per SQL chunk). Memory holds a few partitions at a time.",
            show_default=False,
        ),
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db-url",
            help="Database of --sql and --table (default: MLFACTORY_DB_URL, else the home's "
            "SQLite file).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an existing --output folder that a previous mlfactory predict wrote "
            "(nothing else is ever removed).",
        ),
    ] = False,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Also load pickle/cloudpickle models (runs code from the file: trusted only).",
        ),
    ] = False,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Load a model version that has no recorded SHA-256 (registered outside "
            "mlfactory promote); warns.",
        ),
    ] = False,
    no_onnx: Annotated[
        bool,
        typer.Option(
            "--no-onnx",
            help="Score with the scikit-learn pipeline even when the version has a verified "
            "ONNX graph (used by default): to compare the two paths, or when the graph is "
            "suspected wrong.",
        ),
    ] = False,
) -> None:
    """Score a parquet/CSV file or a SQL query with a registered model, out of core.

    Give one input (--input or --sql) and one output (--output or --table). The output has the
    key columns, prediction, proba_<class> for classifiers, model_version and scored_at.

    The input is read in Dask partitions and scored a few at a time, so files larger than memory
    work; with --scheduler the model is sent to every worker once. A version with a verified
    ONNX graph is scored by onnxruntime (within 1e-6 of scikit-learn), else by its scikit-learn
    pipeline; the summary's "inference" row says which and why. A missing model column is
    reported before anything is written. The command never destroys data: --sql runs read-only
    and --overwrite replaces only a folder that mlfactory predict wrote.
    """
    from mlfactory.batch import batch_predict

    settings = current_settings(ctx)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]predict[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("partitions · {task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=None)

        def advance(done: int, total: int | None, rows: int) -> None:
            progress.update(task, completed=done, total=total, description=f"{rows:,} rows")

        report = batch_predict(
            settings,
            model,
            input_path=input_path,
            sql=sql,
            output_path=output,
            table=table,
            key_columns=_keys(key_columns),
            scheduler=scheduler,
            partition_rows=partition_rows,
            db_url=db_url,
            overwrite=overwrite,
            allow_pickle=allow_pickle,
            allow_unverified=allow_unverified,
            progress=advance,
            onnx=not no_onnx,
        )
    summary = Table(title=f"scored with {escape(report.model)} (version {report.version})")
    summary.add_column("")
    summary.add_column("value", overflow="fold")
    summary.add_row("rows", f"{report.rows:,}")
    summary.add_row("partitions", str(report.partitions))
    summary.add_row("rows/s", f"{report.rows_per_s:,.0f}")
    summary.add_row("seconds", f"{report.seconds:.1f}")
    summary.add_row("inference", _inference_label(report))
    summary.add_row("why", escape(report.inference_reason))
    summary.add_row("columns", escape(", ".join(report.columns)))
    summary.add_row("output", escape(report.output))
    console.print(summary)
