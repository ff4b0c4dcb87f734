"""``mlfactory data …`` commands: ingest prices into the bronze store, and show its status."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mlfactory.cli._choices import SOURCE_DESCRIPTIONS, SYNTHETIC_DEFAULT_END, SourceName
from mlfactory.cli._common import console, current_settings, fail
from mlfactory.cli._data import data_app
from mlfactory.cli._ids import JsonOption, print_json

if TYPE_CHECKING:
    from mlfactory.data._ingest import TickerOutcome

_SOURCES_HELP = escape(
    "; ".join(f"{name}: {description}" for name, description in SOURCE_DESCRIPTIONS.items())
)
_INGEST_HELP = (
    "Fetch daily prices into the bronze parquet store, incrementally.\n\n"
    "Each ticker is fetched only after its newest stored date and merged into the year "
    "partitions that change; a rerun with nothing new writes nothing. Files are replaced "
    "atomically, so a killed run leaves the store readable and the next run completes it. "
    "A failing ticker is reported and skipped; the exit code is 1 only when every ticker failed."
)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


@data_app.command("ingest", help=_INGEST_HELP)
def ingest_command(
    ctx: typer.Context,
    tickers: Annotated[
        Path | None,
        typer.Option(
            "--tickers",
            help="CSV of tickers: columns 'ticker, sector, subsector' or Wikipedia's S&P 500 table "
            "'Symbol, GICS Sector, GICS Sub-Industry'. Default: the shipped sample of 54 S&P 500 "
            "tickers across the 11 GICS sectors.",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        SourceName,
        typer.Option("--source", help=f"Where prices come from. {_SOURCES_HELP}."),
    ] = SourceName.synthetic,
    csv_dir: Annotated[
        Path | None,
        typer.Option("--csv-dir", help="Folder of <TICKER>.csv files (needed by --source csv)."),
    ] = None,
    start: Annotated[
        datetime,
        typer.Option(
            "--start",
            formats=["%Y-%m-%d"],
            help="First date fetched for tickers not yet stored (default 2000-01-01).",
            show_default=False,
        ),
    ] = datetime(2000, 1, 1),
    end: Annotated[
        datetime | None,
        typer.Option(
            "--end",
            formats=["%Y-%m-%d"],
            help=f"Last date to fetch (inclusive). Default: {SYNTHETIC_DEFAULT_END} for the "
            "synthetic source, so the demo data is the same on every machine and day; today for "
            "yfinance and csv.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fetch daily prices into the bronze store (help text: ``_INGEST_HELP``)."""
    from mlfactory.data._bronze import BronzeStore
    from mlfactory.data._ingest import ingest
    from mlfactory.data._sources import SOURCES, make_source
    from mlfactory.data._sources import SourceName as Name
    from mlfactory.data._tickers import read_tickers  # csv module: no pandas for a no-op

    settings = current_settings(ctx)
    frame = read_tickers(tickers)
    price_source = make_source(Name(source.value), csv_dir=csv_dir)
    last_day = end.date() if end is not None else SOURCES[Name(source.value)].default_end()
    store = BronzeStore.from_settings(settings)

    from mlfactory.cli._progress import DelayedProgress

    with DelayedProgress("ingest", len(frame), console) as progress:

        def advance(outcome: TickerOutcome) -> None:
            progress.advance(f"{outcome.ticker} {outcome.status}")

        report = ingest(
            store, frame, price_source, start.date(), last_day, advance, source_name=source.value
        )

    if report.outcomes and report.count("unchanged") == len(report.outcomes):
        # nothing new: one line, as `make` or `git pull` say it, not a table of zeros
        console.print(
            f"bronze store up to date: {len(report.outcomes)} tickers unchanged, stored "
            f"{report.first or '-'} .. {report.last or '-'}, nothing to fetch up to "
            f"{report.end} ({source.value}; {escape(str(store.root))})",
            highlight=False,
        )
        return
    from rich.table import Table

    summary = Table(title=f"bronze ingest ({source.value}, {report.start} .. {report.end})")
    summary.add_column("")
    summary.add_column("value", justify="right")
    for status, count in report.counts.items():
        summary.add_row(f"tickers {status}", str(count))
    summary.add_row("rows written", f"{report.rows_added:,}")
    summary.add_row("partitions written", f"{report.partitions_written:,}")
    summary.add_row("stored date range", f"{report.first or '-'} .. {report.last or '-'}")
    summary.add_row("seconds", f"{report.seconds:.1f}")
    summary.add_row("store", escape(str(store.root)))
    console.print(summary)
    if report.failures:
        failed = Table(title="failed tickers", show_lines=False)
        failed.add_column("ticker")
        failed.add_column("error", overflow="fold")
        for outcome in report.failures:
            failed.add_row(outcome.ticker, escape(outcome.error or ""))
        console.print(failed)
    if report.all_failed:
        first = report.failures[0]
        raise fail(
            f"every ticker failed ({len(report.failures)}); {first.ticker}: {first.error}",
            1,
            "the failed tickers table above lists each error",
        )


@data_app.command("status")
def status_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the bronze store: date range, partitions, rows and size per ticker, last ingest."""
    from dataclasses import asdict

    from mlfactory.data._bronze import BronzeStore

    store = BronzeStore.from_settings(current_settings(ctx))
    status = store.status()
    if as_json:
        print_json(
            {
                "root": str(store.root),
                "tickers": [asdict(t) for t in status.tickers],
                "rows": status.rows,
                "bytes": status.bytes,
                "last_ingest": status.last_ingest,
            }
        )
        return
    if not status.tickers:
        console.print(
            f"bronze store {escape(str(store.root))} is empty; run `mlfactory data ingest`"
        )
        return
    last = status.last_ingest or {}
    from rich.table import Table

    table = Table(
        title="bronze store",
        caption=f"{escape(str(store.root))}\nlast ingest: {last.get('last_ingest', 'unknown')}"
        + (f" ({last.get('source')}, up to {last.get('end')})" if last else ""),
    )
    table.add_column("ticker")
    table.add_column("first")
    table.add_column("last")
    table.add_column("partitions", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("size", justify="right")
    errors = any(t.error for t in status.tickers)
    if errors:
        table.add_column("error", overflow="fold")
    for entry in status.tickers:
        row = [
            entry.ticker,
            str(entry.first or "-"),
            str(entry.last or "-"),
            str(entry.partitions),
            f"{entry.rows:,}",
            _size(entry.bytes),
        ]
        if errors:
            # paths relative to the store keep the cell short: the store root is the title
            error = (entry.error or "").replace(f"{status.root}/", "")
            row.append(f"[red]{escape(error)}[/]" if error else "")
        table.add_row(*row)
    total = [
        f"total ({len(status.tickers)} tickers)",
        str(status.first or "-"),
        str(status.last or "-"),
        f"{status.partitions:,}",
        f"{status.rows:,}",
        _size(status.bytes),
    ]
    table.add_section()
    table.add_row(*[f"[bold]{cell}[/]" for cell in total], *([""] if errors else []))
    console.print(table)
