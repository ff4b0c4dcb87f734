"""``mlfactory promote`` and ``mlfactory models …``: the model registry."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlfactory.cli._common import console, current_settings, require_database
from mlfactory.cli._ids import JsonOption, finite, print_json, resolve_run_id, short_id
from mlfactory.cli._runs import fixed_width_column
from mlfactory.exceptions import ModelNotFound

if TYPE_CHECKING:
    from mlfactory.settings import Settings

models_app = typer.Typer(help="Registered models: list them, show versions, aliases and metrics.")


def promote_command(
    ctx: typer.Context,
    run_id: Annotated[
        str | None,
        typer.Argument(help="Run (id or unique prefix) whose model to register, or use --best."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Registered model name.")] = ...,
    best: Annotated[
        str | None,
        typer.Option(
            "--best",
            help="Experiment whose best run (by --metric) to register; in an experiment of "
            "fleets, its best fleet training (fleet test metric), through the per-segment gate.",
        ),
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

    settings = current_settings(ctx)
    if run_id is not None:
        run_id = resolve_run_id(settings, run_id)
        from mlfactory.fleet._registry import is_fleet_run

        if is_fleet_run(settings, run_id):  # a fleet: one bundle, gated segment by segment
            from mlfactory.fleet._cli import promote_fleet_command

            promote_fleet_command(settings, name, run_id, alias, console)
            return
    elif best is not None:
        from mlfactory.fleet._registry import best_fleet_run

        fleet = best_fleet_run(settings, best, metric, name)
        if fleet is not None:  # the experiment trains fleets: its best one, through the gate
            from mlfactory.fleet._cli import promote_fleet_command

            console.print(
                f"best fleet training of {escape(best)}: run {short_id(fleet.info.run_id)} "
                f"({escape(metric)} = {fleet.data.metrics[metric]:.4f})"
            )
            promote_fleet_command(settings, name, fleet.info.run_id, alias, console)
            return
    info = promote(settings, name, run_id=run_id, best_of=best, metric=metric, alias=alias)
    console.print(
        f"registered [bold]{info.name}[/] version [bold]{info.version}[/] "
        f"(@{alias}) from run {short_id(info.run_id)}"
    )
    for key, value in sorted(info.metrics.items()):
        console.print(f"  {key} = {value:.4f}")


@models_app.command("list")
def list_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every registered model: number of versions, latest, aliases."""
    rows = _model_rows(current_settings(ctx))
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            "no registered models yet: try `mlfactory promote --best EXPERIMENT --name NAME`"
        )
        return
    table = Table(title="registered models")
    for column in rows[0]:
        table.add_column(column, no_wrap=column != "aliases", overflow="ellipsis")
    for row in rows:
        table.add_row(*[escape(str(v)) for v in row.values()])
    console.print(table)


@models_app.command("show")
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: JsonOption = False,
) -> None:
    """Versions of one model, newest first, with aliases, source run and held-out test metrics.

    The table shows up to three test metrics and 8-character run ids; --json has everything.
    A fleet adds the summary of its champion (else newest) version: segments, fallback share,
    worst segments; with --json an object {name, fleet (with one row per segment), versions}.
    """
    versions = _model_versions(current_settings(ctx), name)
    fleet = next(
        (v for v in versions if "champion" in v.aliases), versions[0] if versions else None
    )
    if fleet is not None and fleet.tags.get("fleet") != "true":
        fleet = None
    if as_json:
        rows = [
            {
                **{k: v for k, v in asdict(info).items() if k != "metrics"},
                "created": _created(info.created, "%Y-%m-%dT%H:%M:%SZ"),
                "metrics": {k: finite(v) for k, v in info.metrics.items()},
            }
            for info in versions
        ]
        if fleet is None:
            print_json(rows)
            return
        from mlfactory.fleet._registry import describe_fleet  # a fleet: its summary first

        summary = describe_fleet(current_settings(ctx), f"{name}/{fleet.version}")
        print_json({"name": name, "fleet": _finite_tree(summary), "versions": rows})
        return
    metrics = sorted({m for v in versions for m in v.metrics}, key=_metric_order)
    shown = [m for m in metrics if m.startswith("test_")][:3] or metrics[:3]
    title = f"model {name}" + (" · held-out test metrics" if shown else "")
    rows = [
        [
            info.version,
            ", ".join(info.aliases),
            _created(info.created, "%Y-%m-%d %H:%M"),
            short_id(info.run_id),
            info.tags.get("spec", ""),
            *[f"{info.metrics[m]:.4f}" if m in info.metrics else "" for m in shown],
        ]
        for info in versions
    ]
    table = Table(title=escape(title))
    cells = list(zip(*rows, strict=True)) if rows else [[] for _ in range(5 + len(shown))]
    fixed_width_column(table, "version", list(cells[0]), "right")
    fixed_width_column(table, "aliases", list(cells[1]), limit=24)
    fixed_width_column(table, "created", list(cells[2]))
    fixed_width_column(table, "run", list(cells[3]))
    table.add_column("spec", overflow="ellipsis", min_width=8)  # gives way when narrow
    for index, metric in enumerate(shown):
        fixed_width_column(table, metric.removeprefix("test_"), list(cells[5 + index]), "right")
    for row in rows:
        table.add_row(*[escape(cell) for cell in row])
    console.print(table)
    if len(shown) < len(metrics):
        console.print(f"{len(metrics) - len(shown)} more metric(s): --json shows them")
    if fleet is not None:
        from mlfactory.fleet._cli import print_fleet_summary

        print_fleet_summary(current_settings(ctx), f"{name}/{fleet.version}", console)


def _model_rows(settings: Settings) -> list[dict[str, Any]]:
    """``registry.list_models``: read with SQL when the store allows it (no MLflow imported)."""
    from mlfactory.tracking import TrackingStoreEmpty
    from mlfactory.tracking._sqlread import list_models_sql, sql_reader

    try:
        engine = sql_reader(settings)
    except TrackingStoreEmpty:
        return []
    if engine is not None:
        return list_models_sql(engine)
    from mlfactory.registry import list_models

    return list_models(settings)


def _model_versions(settings: Settings, name: str) -> list[Any]:
    """``registry.describe_model``: read with SQL when the store allows it (no MLflow)."""
    from mlfactory.tracking import TrackingStoreEmpty
    from mlfactory.tracking._sqlread import describe_model_sql, sql_reader

    try:
        engine = sql_reader(settings)
    except TrackingStoreEmpty as exc:
        raise ModelNotFound(f"registered model {name!r} not found: {exc}") from None
    if engine is not None:
        return describe_model_sql(engine, name)
    from mlfactory.registry import describe_model

    return describe_model(settings, name)


def _finite_tree(value: Any) -> Any:
    """``value`` with every NaN or infinity, however deep, as ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_tree(v) for v in value]
    return finite(value)


def _metric_order(name: str) -> tuple[int, str]:
    """The metrics people look for first, then the others alphabetically."""
    first = ("test_roc_auc", "test_accuracy", "test_f1", "test_r2", "test_rmse")
    return (first.index(name) if name in first else len(first), name)


def _created(millis: int, pattern: str) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).strftime(pattern)


@models_app.command("decisions")
def decisions_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: JsonOption = False,
) -> None:
    """The promotion gate's decisions about a model, newest first, with their reasons."""
    from mlfactory.line._cli import print_decisions

    settings = current_settings(ctx)
    require_database(settings)  # an outage is exit 3, never "no decisions yet"
    print_decisions(settings, name, console, as_json=as_json)
