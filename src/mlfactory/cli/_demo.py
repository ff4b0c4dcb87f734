"""``mlfactory demo``: the whole factory end to end on embedded defaults."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from mlfactory.cli._common import console, current_settings

NEXT_STEPS = (
    ("tracking UI", "mlfactory ui"),
    ("runs", "mlfactory runs list"),
    ("models", "mlfactory models show credit"),
    ("drift", "mlfactory monitor model credit@champion --since 24h"),
    ("dashboard", "mlfactory dashboard"),
)


def demo(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller data and fewer candidates (used by the tests).")
    ] = False,
) -> None:
    """Run every stage of the factory on local defaults and print where the results are."""
    from mlfactory.demo import DemoContext, demo_stages

    context = DemoContext(current_settings(ctx), quick)
    summary = Table(title="mlfactory demo")
    summary.add_column("stage")
    summary.add_column("result", overflow="fold")
    summary.add_column("seconds", justify="right")
    results = []
    for stage in demo_stages():
        started = time.perf_counter()
        with console.status(f"[bold]{stage.name}[/]: {stage.description} ..."):
            result = stage.run(context)
        results.append(result)
        summary.add_row(stage.name, result.summary, f"{time.perf_counter() - started:.1f}")
    console.print(summary)
    paths = Table(title="where everything is", show_header=False)
    for result in results:
        for label, path in result.paths.items():
            paths.add_row(label, path)
    for label, command in NEXT_STEPS:
        paths.add_row(label, command)
    console.print(paths)
