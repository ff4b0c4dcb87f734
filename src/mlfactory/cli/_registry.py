"""``mlfactory promote`` and ``mlfactory models …``: the model registry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from mlfactory.cli._common import console, current_settings

models_app = typer.Typer(help="Registered models: list them, show versions, aliases and metrics.")


def promote_command(
    ctx: typer.Context,
    run_id: Annotated[
        str | None, typer.Argument(help="Run whose model to register (or use --best).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Registered model name.")] = ...,
    best: Annotated[
        str | None,
        typer.Option("--best", help="Experiment whose best run (by --metric) to register."),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="Metric that picks the best run (higher is better).")
    ] = "test_roc_auc",
    alias: Annotated[
        str, typer.Option(help="Alias to move to the new version (e.g. challenger).")
    ] = "champion",
) -> None:
    """Register a run's model as a new version and move an alias (default: champion) to it.

    The previous holder of the alias keeps its version number. The version is tagged with the
    spec, dataset fingerprint, git commit, test metrics and the SHA-256 of the model file.
    """
    from mlfactory.registry import promote

    info = promote(
        current_settings(ctx), name, run_id=run_id, best_of=best, metric=metric, alias=alias
    )
    console.print(
        f"registered [bold]{info.name}[/] version [bold]{info.version}[/] "
        f"(@{alias}) from run {info.run_id}"
    )
    for key, value in sorted(info.metrics.items()):
        console.print(f"  {key} = {value:.4f}")


@models_app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every registered model: number of versions, latest, aliases."""
    from mlfactory.registry import list_models

    rows = list_models(current_settings(ctx))
    if not rows:
        console.print(
            "no registered models yet: try `mlfactory promote --best EXPERIMENT --name NAME`"
        )
        return
    table = Table(title="registered models")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(v) for v in row.values()])
    console.print(table)


@models_app.command("show")
def show_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Registered model name.")]
) -> None:
    """Versions of one model, newest first, with aliases, source run and test metrics."""
    from mlfactory.registry import describe_model

    versions = describe_model(current_settings(ctx), name)
    metrics = sorted({m for v in versions for m in v.metrics})
    table = Table(title=f"model {name}")
    for column in ("version", "aliases", "created", "run", "spec", *metrics):
        table.add_column(column, overflow="fold")
    for info in versions:
        created = datetime.fromtimestamp(info.created / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            info.version,
            ", ".join(info.aliases),
            created,
            info.run_id,
            info.tags.get("spec", ""),
            *[f"{info.metrics[m]:.4f}" if m in info.metrics else "" for m in metrics],
        )
    console.print(table)


@models_app.command("decisions")
def decisions_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Registered model name.")]
) -> None:
    """The promotion gate's decisions about a model, newest first, with their reasons."""
    from mlfactory.line._cli import print_decisions

    print_decisions(current_settings(ctx), name, console)
