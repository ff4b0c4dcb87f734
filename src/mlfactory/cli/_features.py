"""``mlfactory data …`` commands: featurize the bronze store, sample the feature store."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mlfactory.cli._choices import LOCAL_SCHEDULERS, SAMPLE_FORMATS
from mlfactory.cli._common import console, current_settings
from mlfactory.cli._data import data_app
from mlfactory.exceptions import SpecError

if TYPE_CHECKING:
    from mlfactory.data._featurize import TickerResult

REDRAW_SECONDS = 0.1  # the progress bar is redrawn at most this often


def _split(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise SpecError(f"empty {what} list {text!r}: expected comma-separated values")
    return items


def _windows(text: str) -> list[int]:
    try:
        return [int(item) for item in _split(text, "--windows") or []]
    except ValueError:
        raise SpecError(
            f"invalid --windows {text!r}: expected comma-separated positive integers like 10,20"
        ) from None


@data_app.command("featurize")
def featurize_command(
    ctx: typer.Context,
    tickers: Annotated[
        str | None,
        typer.Option(
            "--tickers",
            help="Comma-separated tickers to featurize (default: every ticker in bronze).",
            show_default=False,
        ),
    ] = None,
    windows: Annotated[
        str,
        typer.Option("--windows", help="Comma-separated rolling windows (days) of returns_mean_W."),
    ] = "10",
    horizon: Annotated[
        int,
        typer.Option("--horizon", min=1, help="Days ahead the target looks (target = up or not)."),
    ] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help=f"Dask scheduler: {', '.join(LOCAL_SCHEDULERS)} or an address such as "
            "tcp://10.0.0.5:8786 (default: MLFACTORY_DASK_SCHEDULER_ADDRESS, else processes "
            "for 32+ tickers to build from local stores, threads otherwise).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild every ticker, even unchanged ones.")
    ] = False,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact",
            help="Fold the recent days kept in the delta file into the tickers' year blocks "
            "(done by itself once a ticker has 64 rows there).",
        ),
    ] = False,
) -> None:
    """Compute silver features from bronze prices, one Dask task per ticker.

    Writes HOME/data/silver/features/ticker=T/part-FIRST-LAST.parquet (blocks of years) with
    lagged closes, returns, the up-day flag, the high-low range, rolling mean returns and the
    target (next day up or not). No feature looks at later days. Only the year blocks whose
    bronze days (or the days they look back or ahead to) changed are rewritten; new days that
    only extend a ticker's last year go to one shared file, _delta/part-HASH.parquet, read
    together with the blocks.
    Exit code 1 when a ticker failed (the others are still written).
    """
    from mlfactory.data._featurize import featurize

    settings = current_settings(ctx)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]featurize[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        # redrawn as tickers finish, not by a refresh thread: with no other thread running,
        # featurize may fork its worker processes (a fork copies no lock another thread holds)
        auto_refresh=False,
    )
    with progress:
        task = progress.add_task("", total=None)

        drawn = 0.0

        def advance(result: TickerResult, done: int, total: int) -> None:
            nonlocal drawn
            now = time.monotonic()
            redraw = now - drawn >= REDRAW_SECONDS or done == total
            progress.update(
                task,
                completed=done,
                total=total,
                description=f"{result.ticker} {result.status}",
                refresh=redraw,
            )
            if redraw:
                drawn = now

        report = featurize(
            settings,
            tickers=_split(tickers, "--tickers"),
            windows=_windows(windows),
            horizon=horizon,
            scheduler=scheduler,
            force=force,
            compact=compact,
            progress=advance,
        )

    from rich.table import Table

    summary = Table(title="silver features")
    summary.add_column("")
    summary.add_column("value", justify="right")
    summary.add_row("tickers written", str(len(report.written)))
    summary.add_row("tickers unchanged (skipped)", str(len(report.skipped)))
    summary.add_row("tickers failed", str(len(report.failures)))
    summary.add_row("year blocks written", f"{report.blocks_written:,}")
    summary.add_row("tickers appended to the delta", f"{len(report.appended):,}")
    summary.add_row("rows written", f"{report.rows_written:,}")
    summary.add_row("windows / horizon", f"{','.join(map(str, report.windows))} / {report.horizon}")
    summary.add_row("scheduler", escape(report.scheduler))
    summary.add_row("seconds", f"{report.seconds:.1f}")
    summary.add_row("store", escape(str(report.silver_dir)))
    console.print(summary)
    if report.failures:
        failed = Table(title="failed tickers")
        failed.add_column("ticker")
        failed.add_column("error", overflow="fold")
        for result in report.failures:
            failed.add_row(result.ticker, escape(result.error or ""))
        console.print(failed)
        raise typer.Exit(1)


@data_app.command("sample")
def sample_command(
    ctx: typer.Context,
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help=f"File to write (or s3://bucket/key); the extension picks the format "
            f"({', '.join(SAMPLE_FORMATS)}).",
        ),
    ],
    n: Annotated[
        int | None,
        typer.Option("--n", min=0, help="Number of rows to draw.", show_default=False),
    ] = None,
    frac: Annotated[
        float | None,
        typer.Option("--frac", help="Fraction of rows to draw, in (0, 1].", show_default=False),
    ] = None,
    stratify: Annotated[
        str | None,
        typer.Option(
            "--stratify",
            help="Column whose class proportions the sample keeps (e.g. target or sector).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same rows).")] = 0,
    tickers: Annotated[
        str | None,
        typer.Option(
            "--tickers", help="Comma-separated tickers (default: all).", show_default=False
        ),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(
            "--start", formats=["%Y-%m-%d"], help="First date (inclusive).", show_default=False
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(
            "--end", formats=["%Y-%m-%d"], help="Last date (inclusive).", show_default=False
        ),
    ] = None,
) -> None:
    """Draw a seeded random (or stratified) sample of the feature store into CSV or parquet.

    Give exactly one of --n or --frac. Filters on tickers and dates are applied while reading.
    """
    from mlfactory.data._feature_store import sample_features

    result = sample_features(
        out,
        n=n,
        frac=frac,
        stratify=stratify,
        seed=seed,
        tickers=_split(tickers, "--tickers"),
        start=start,
        end=end,
        settings=current_settings(ctx),
    )
    console.print(
        f"wrote [bold]{result.rows:,}[/] of {result.selected:,} rows "
        f"({result.tickers} ticker(s), {result.columns} columns) to {escape(str(result.path))}"
    )
