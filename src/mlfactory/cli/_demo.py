"""``mlfactory demo``: the whole factory end to end on embedded defaults."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from mlfactory.cli._common import console, current_settings
from mlfactory.demo import demo_stages


def demo(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller data and fewer candidates (used by the tests).")
    ] = False,
) -> None:
    """Run every stage of the factory on local defaults and print where the results are."""
    settings = current_settings(ctx)
    summary = Table(title="mlfactory demo")
    summary.add_column("stage")
    summary.add_column("result", overflow="fold")
    summary.add_column("seconds", justify="right")
    for stage in demo_stages():
        started = time.perf_counter()
        with console.status(f"[bold]{stage.name}[/] ..."):
            result = stage.run(settings, quick)
        summary.add_row(stage.name, result.summary, f"{time.perf_counter() - started:.1f}")
    console.print(summary)
