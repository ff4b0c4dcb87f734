"""``mlfactory run LINE.toml``: the factory line, rerunning only what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlfactory.cli._common import console, current_settings

_STYLE = {"up to date": "green", "ran": "bold cyan", "would run": "yellow", "failed": "red"}


def run_command(
    ctx: typer.Context,
    line: Annotated[Path, typer.Argument(help="Line spec TOML file (see examples/).")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a line field: --set gate.margin=0.01 "
            "--set train.experiment.search.kind=none.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say per stage 'would run' or 'up to date', and why."),
    ] = False,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="Rerun this stage even when it is up to date (repeatable)."),
    ] = None,
    from_stage: Annotated[
        str | None, typer.Option("--from", help="Rerun this stage and every one after it.")
    ] = None,
    force_promote: Annotated[
        bool,
        typer.Option("--force-promote", help="Promote even if the gate rejects (needs --reason)."),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why --force-promote (recorded).")
    ] = None,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to wait for another run of this line to finish."),
    ] = 0.0,
    if_drift: Annotated[
        bool,
        typer.Option(
            "--if-drift",
            help="Run only if the champion's logged traffic drifted and the cooldown passed "
            "(for cron); the gate still decides the promotion.",
        ),
    ] = False,
    since: Annotated[
        str, typer.Option("--since", help="--if-drift: window of logged traffic (24h, 7d, ...).")
    ] = "24h",
    cooldown: Annotated[
        str, typer.Option("--cooldown", help="--if-drift: least time between two retrains.")
    ] = "24h",
) -> None:
    """Run a line: data, dataset, train, gate, promote, batch, monitor; only what changed.

    Each stage's cache key (its config, input fingerprints and library versions) is compared
    with its last finished record; a failed stage stops the line and the next run resumes there.
    """
    from mlfactory.line import run_line

    with console.status("starting") as status:
        report = run_line(
            line,
            current_settings(ctx),
            set_ or [],
            dry_run=dry_run,
            force=force or [],
            from_stage=from_stage,
            force_promote=force_promote,
            reason=reason,
            wait_s=wait,
            if_drift=if_drift,
            since=since,
            cooldown=cooldown,
            progress=lambda message: status.update(escape(message)),
        )
    if report.note:
        console.print(escape(report.note))
    if not report.stages:
        return
    title = f"line {report.line}" + (" (dry run)" if dry_run else "")
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("status")
    table.add_column("why / result", overflow="fold")
    table.add_column("seconds", justify="right")
    for outcome in report.stages:
        style = _STYLE.get(outcome.status, "")
        text = outcome.summary if outcome.status == "ran" else ""
        why = "; ".join(outcome.why)
        detail = f"{why} -> {text}" if why and text else why or text
        table.add_row(
            outcome.stage,
            f"[{style}]{outcome.status}[/]",
            escape(detail),
            f"{outcome.seconds:.1f}",
        )
    console.print(table)
    ran = sum(o.status == "ran" for o in report.stages)
    console.print(
        f"{ran} stage(s) ran, {sum(o.status == 'up to date' for o in report.stages)} up to date "
        f"in {report.seconds:.1f} s"
        + (f"; line run {report.line_run_id}" if report.line_run_id else "")
    )
