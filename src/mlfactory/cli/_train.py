"""``mlfactory train``: run an experiment spec and record it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlfactory.cli._common import console, current_settings, require_database

if TYPE_CHECKING:
    from mlfactory.training import ExperimentResult


def train_command(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Experiment spec TOML file (see examples/).")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a spec field, Sacred-style: --set model=RandomForest --set cv.folds=10. "
            'Lists make a matrix: --set \'model=["Ridge", "RandomForest"]\'.',
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="Parallel fits with joblib (-1: all cores)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler address (tcp://host:8786) to run the fits on a cluster; "
            "default MLFACTORY_DASK_SCHEDULER_ADDRESS, else local.",
        ),
    ] = None,
) -> None:
    """Run a spec: split, cross-validate or search, refit the best, score it on the test set.

    Exit codes: 2 for a wrong spec or --scheduler, 3 when the database or the Dask scheduler
    cannot be reached (checked before any work), 143 on SIGTERM (the run ends KILLED).

    Everything is recorded in MLflow on the configured database (parent run, one run per matrix
    cell, one child run per candidate) and in the SQL tables cv_fold_results and tuning_results.
    """
    from mlfactory.training import train
    from mlfactory.training._scheduler import check_scheduler

    settings = current_settings(ctx)
    # before any work: a wrong --scheduler (exit 2), a scheduler or database that is down (3)
    scheduler = check_scheduler(scheduler or settings.dask_scheduler_address)
    require_database(settings)
    with console.status("starting") as status:
        result = train(
            spec,
            settings,
            set_ or [],
            n_jobs=jobs,
            scheduler=scheduler,
            progress=lambda message: status.update(message),
        )
    if hasattr(result, "manifest"):  # a fleet ([segments] in the spec)
        from mlfactory.fleet._cli import print_fleet_result

        print_fleet_result(result, console)
        return
    print_result(result)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def print_result(result: ExperimentResult) -> None:
    """Leaderboard of cells, the best cell's candidates, and its held-out scores."""
    board = result.leaderboard().drop(columns=["run_id", "best_params"])
    table = Table(title=f"experiment {result.experiment}: cells by cv score")
    for column in board.columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for _, row in board.iterrows():
        table.add_row(*[_fmt(row[c]) for c in board.columns])
    console.print(table)

    outcome = result.best.outcome
    metric = outcome.refit_metric
    candidates = outcome.candidates.sort_values(f"mean_test_{metric}", ascending=False)
    top = Table(title=f"best cell {result.best.name}: candidates by cv {metric}")
    top.add_column("#")
    top.add_column("params", overflow="fold")
    top.add_column(f"cv {metric}")
    top.add_column("status")
    for _, row in candidates.head(10).iterrows():
        score = f"{row[f'mean_test_{metric}']:.4f} ± {row[f'std_test_{metric}']:.4f}"
        top.add_row(str(row["candidate"]), str(row["params"]), score, row["status"])
    console.print(top)
    scores = ", ".join(f"{k}={v:.4f}" for k, v in result.best.test_scores.items())
    console.print(f"[bold]held-out test[/] ({result.best.name}): {scores}")
    console.print(f"model: {result.best.model_uri}   run: {result.run_id}")
