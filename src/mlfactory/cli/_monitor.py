"""``mlfactory monitor …``: drift between two samples, of a served model, across time windows.

Exit codes are meant for cron and CI: 0 = no drift, 1 = drift detected, 2 = error (bad input,
missing model, empty window...), 3 = the database is unreachable or refused the login (an
outage, never drift), 4 = unexpected error (traceback in the log file), 130/143 = interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlfactory.cli._common import (
    MlfactoryGroup,
    console,
    current_settings,
    fail,
    require_database,
)

if TYPE_CHECKING:
    from mlfactory.monitoring import DriftConfig, DriftReport


class Freq(StrEnum):
    """Window lengths (the values of ``mlfactory.monitoring.WindowFreq``, kept import-free)."""

    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"


EXIT_NO_DRIFT, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
_PROGRESS_MIN_COLUMNS = 8


class MonitorGroup(MlfactoryGroup):
    """A failure below ``monitor`` that would exit 1 exits 2, so 1 always means drift; outages
    (3), unexpected errors (4) and interruptions keep their own codes."""

    def failure_code(self, code: int) -> int:
        return EXIT_ERROR if code == EXIT_DRIFT else code


monitor_app = typer.Typer(
    cls=MonitorGroup,
    no_args_is_help=True,
    help="Distribution-shift monitoring: drift reports (HTML, JSON, a drift_reports row) and "
    "window tests. Exit code 0 = no drift, 1 = drift detected, 2 = error, 3 = database "
    "unreachable, 4 = unexpected error.",
)

AlphaOption = Annotated[
    float,
    typer.Option(help="Significance level on Benjamini-Hochberg adjusted p-values."),
]
SampleOption = Annotated[
    int | None,
    typer.Option(help="Subsample each side to at most N rows (fixed seed).", show_default=False),
]
OutOption = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="Folder (or s3://bucket/prefix) for drift.html and drift.json (default: "
        "HOME/reports/drift-TIME; STORE/reports/… on an object store).",
    ),
]
MultivariateOption = Annotated[
    bool,
    typer.Option(
        "--multivariate/--no-multivariate",
        help="Also run the domain classifier (catches joint-distribution shifts; ~10 s).",
    ),
]


def _config(alpha: float, sample: int | None, key: list[str] | None = None) -> DriftConfig:
    from mlfactory.monitoring import DriftConfig

    return DriftConfig(alpha=alpha, sample=sample, key_features=tuple(key or ()))


@contextmanager
def _progress(total: int) -> Iterator:
    """A progress callback (a Rich bar when there are many columns)."""
    if total < _PROGRESS_MIN_COLUMNS:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("testing columns"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("columns", total=total)
        yield lambda _column: bar.advance(task)


_SHORT = {"wasserstein_sd": "W/sd", "tvd": "TVD", "numeric": "num", "categorical": "cat"}


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def print_report(report: DriftReport) -> None:
    """Summary table (drifted first) and the dataset verdict."""
    colors = {"drift": "red", "ok": "green", "not testable": "dim"}
    table = Table(title="drift by column (drifted first)")
    for name in ("column", "kind", "status", "test", "statistic", "p adj.", "effect", "PSI"):
        table.add_column(name, justify="left" if name in ("column", "kind", "status") else "right")
    table.add_column("note", overflow="fold")
    rows = report.ordered_features() + report.predictions + report.labels
    for f in rows:
        label = (
            f.column
            if f in report.features
            else f"{f.column} ({'labels' if f in report.labels else 'predictions'})"
        )
        table.add_row(
            label,
            _SHORT.get(f.kind, f.kind),
            f"[{colors[f.status]}]{f.status}[/]",
            f.test,
            _fmt(f.statistic),
            _fmt(f.p_adjusted),
            f"{_fmt(f.effect)} {_SHORT.get(f.effect_name, f.effect_name)}"
            if f.effect is not None
            else "–",
            _fmt(f.psi),
            f.reason,
        )
    console.print(table)
    if report.multivariate is not None:
        m = report.multivariate
        console.print(
            f"domain classifier: AUC {m.auc:.3f}, permutation threshold {m.threshold:.3f}, "
            f"p = {m.p_value:.3f} -> {'[red]drift[/]' if m.drifted else '[green]ok[/]'}"
        )
    if report.drifted:
        console.print(f"[bold red]DRIFT[/]: {'; '.join(report.reasons)}")
    else:
        console.print(
            f"[bold green]no drift[/]: {len(report.drifted_features)} of {len(report.tested)} "
            f"features drifted (threshold share {report.config.drift_share})"
        )


def _publish_and_exit(ctx: typer.Context, report: DriftReport, out: str | None) -> None:
    from mlfactory.monitoring import publish_report

    print_report(report)
    published = publish_report(current_settings(ctx), report, out)
    console.print(
        f"report {published.report_id}: {published.files.html} and {published.files.json}"
    )
    if report.untested is not None:  # not "no drift": nothing was looked at
        raise fail(
            report.untested,
            EXIT_ERROR,
            "the report lists each column's reason; pass --columns with columns both samples "
            "hold as numbers or categories",
        )
    raise typer.Exit(EXIT_DRIFT if report.drifted else EXIT_NO_DRIFT)


@monitor_app.command("drift")
def drift_command(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Option(help="Reference sample: a .parquet/.csv file or a dataset name.")
    ],
    current: Annotated[
        str, typer.Option(help="Current sample: a .parquet/.csv file or a dataset name.")
    ],
    columns: Annotated[
        list[str] | None,
        typer.Option("--columns", "-c", help="Columns to test (repeat; default: all shared)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Label column: tested on its own (label drift), not as a feature."),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Key feature: the dataset drifts if it drifts (repeat)."),
    ] = None,
    sample: SampleOption = None,
    alpha: AlphaOption = 0.05,
    multivariate: MultivariateOption = False,
    out: OutOption = None,
) -> None:
    """Compare two samples column by column (KS / chi-square, PSI, Wasserstein, JS).

    A column drifts when its Benjamini-Hochberg adjusted p-value is below ALPHA and its effect
    reaches the floor (0.025 sd of Wasserstein distance, or 1% of rows changing category). The
    dataset drifts when >= 25% of the tested columns drift, or a --key column drifts.
    """
    from mlfactory.monitoring import detect_drift, load_sample

    settings = current_settings(ctx)
    require_database(settings)  # the report is recorded there: an outage is 3, found first
    ref, cur = load_sample(reference, settings), load_sample(current, settings)
    label = target or (ref.target if ref.target == cur.target else None)
    chosen = columns
    if chosen is None:
        skip = {label, ref.time_column, cur.time_column}
        chosen = [c for c in ref.frame.columns if c in set(cur.frame.columns) and c not in skip]
    with _progress(len(chosen)) as progress:
        report = detect_drift(
            ref.frame,
            cur.frame,
            chosen,
            _config(alpha, sample, key),
            target=label,
            multivariate=multivariate,
            names=(ref.name, cur.name),
            progress=progress,
        )
    _publish_and_exit(ctx, report, out)


@monitor_app.command("model")
def model_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="NAME, NAME@alias or NAME/version.")],
    since: Annotated[
        str, typer.Option(help="Window start: a duration back from now (24h, 7d) or ISO time.")
    ] = "24h",
    until: Annotated[
        str | None, typer.Option(help="Window end (exclusive; default: now).", show_default=False)
    ] = None,
    sample: SampleOption = None,
    alpha: AlphaOption = 0.05,
    multivariate: MultivariateOption = False,
    out: OutOption = None,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Load a version that has no recorded SHA-256 (registered outside mlfactory "
            "promote); warns.",
        ),
    ] = False,
) -> None:
    """Drift of a registered model: its training sample vs its logged predictions' inputs.

    The reference is the reference_sample.parquet logged with the model's run; the current sample
    is the prediction log of the window (the model's input features). Prediction drift compares
    the model's predictions on the reference sample with the logged predictions.
    """
    from mlfactory.fleet._monitor import monitor_fleet

    fleet = monitor_fleet(
        current_settings(ctx), model, since=since, until=until, config=_config(alpha, sample)
    )
    if fleet is not None:  # a fleet: each segment's training rows vs its own traffic
        from mlfactory.fleet._cli import print_fleet_drift
        from mlfactory.fleet._monitor import publish_fleet_drift

        print_fleet_drift(fleet, console)
        published = publish_fleet_drift(current_settings(ctx), fleet, out)
        console.print(f"report {published.report_id}: {published.html} and {published.json}")
        raise typer.Exit(EXIT_DRIFT if fleet.drifted else EXIT_NO_DRIFT)
    from mlfactory.monitoring import monitor_model

    report = monitor_model(
        current_settings(ctx),
        model,
        since=since,
        until=until,
        config=_config(alpha, sample),
        multivariate=multivariate,
        allow_unverified=allow_unverified,
    )
    _publish_and_exit(ctx, report, out)


@monitor_app.command("windows")
def windows_command(
    ctx: typer.Context,
    data: Annotated[
        str, typer.Option(help="A dataset name (e.g. stocks) or a .parquet/.csv file.")
    ],
    column: Annotated[str, typer.Option(help="Numeric column to compare across windows.")],
    freq: Annotated[Freq, typer.Option(help="Window length.")] = Freq.YEAR,
    anchor_month: Annotated[
        int,
        typer.Option(
            min=1, max=12, help="Month a year/quarter window starts in (3 = March-to-March)."
        ),
    ] = 1,
    date_column: Annotated[
        str | None,
        typer.Option(help="Date column (default: the dataset's time column, else 'date')."),
    ] = None,
    alpha: AlphaOption = 0.05,
) -> None:
    """KS test of each window against the next (e.g. March-to-March years of daily returns)."""
    from mlfactory.monitoring import DriftConfig, load_sample, window_drift

    source = load_sample(data, current_settings(ctx))
    table = window_drift(
        source.frame,
        column,
        date_column or source.time_column or "date",
        freq=freq.value,
        anchor_month=anchor_month,
        config=DriftConfig(alpha=alpha),
    )
    view = Table(
        title=f"{column}: consecutive {freq.value} windows, named by their first month "
        f"({source.name})"
    )
    for name in ("window", "next", "rows", "KS", "p", "p adj", "W/sd", "status"):
        view.add_column(
            name,
            justify="left" if name in ("window", "next", "status") else "right",
            no_wrap=True,
        )
    colors = {"drift": "red", "ok": "green", "not testable": "dim"}

    def number(value: float) -> str:
        return _fmt(None if value != value else value)  # NaN (not testable) shows as a dash

    for row in table.itertuples(index=False):
        view.add_row(
            row.window.split("..")[0],
            row.next_window.split("..")[0],
            f"{row.n_window}/{row.n_next}",
            number(row.ks_statistic),
            number(row.p_value),
            number(row.p_adjusted),
            number(row.wasserstein_sd),
            f"[{colors[row.status]}]{row.status}[/]",
        )
    console.print(view)
    drifted = int((table["status"] == "drift").sum())
    console.print(f"{drifted} of {len(table)} consecutive pairs drifted")
    raise typer.Exit(EXIT_DRIFT if drifted else EXIT_NO_DRIFT)
