"""``mlfactory spec …``: inspect experiment specs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlfactory.cli._choices import Task
from mlfactory.cli._common import console, current_settings
from mlfactory.cli._ids import JsonOption, print_json
from mlfactory.exceptions import DataError

spec_app = typer.Typer(
    help="Experiment specs: validate and show the resolved spec and pipeline.",
    no_args_is_help=True,
)

SpecFile = Annotated[
    Path,
    typer.Argument(help="Experiment spec TOML file.", exists=False, dir_okay=False),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a field, Sacred-style: model=RandomForest, cv.folds=10, "
        'search.kind=none, cv.scoring=["roc_auc"] (values are TOML literals when they parse).',
        show_default=False,
    ),
]


def _spec_table(spec) -> Table:
    table = Table(title=f"spec {spec.name}", show_header=True)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    from mlfactory.settings import mask_secrets

    data = mask_secrets(spec.model_dump(mode="json"))  # a URL's password is never printed
    for section in ("cv", "search"):
        for key, value in data.pop(section).items():
            data[f"{section}.{key}"] = value
    for key, value in data.items():
        table.add_row(key, escape(str(value)))
    table.add_row("source", escape(str(spec.source)))
    return table


@spec_app.command()
def validate(ctx: typer.Context, file: SpecFile, set_: SetOption = None) -> None:
    """Check a spec without loading data: schema, names, metrics and grid keys.

    Exits 0 when valid; prints the problem (file, field, allowed values) and exits 2 otherwise.
    """
    from mlfactory.spec import load_spec

    spec = load_spec(file, set_ or [])
    console.print(
        f"[green]valid:[/] {escape(str(file))} — {escape(spec.name)}, "
        f"{len(spec.cells())} pipeline(s): "
        + ", ".join(escape(f"{r}+{m}") for r, m in spec.cells())
    )


@spec_app.command()
def show(
    ctx: typer.Context, file: SpecFile, set_: SetOption = None, as_json: JsonOption = False
) -> None:
    """Print the spec with defaults filled in, its pipelines, and the split when data exists.

    With the dataset available: the column roles of a user table, the train/test split record,
    CV splitter, metrics and each cell's full pipeline. Otherwise says why and shows each cell's
    recipe and model. --json prints the spec, the resolution (or why not) and the roles.
    """
    from mlfactory.exceptions import DegenerateDataError
    from mlfactory.models import MODELS
    from mlfactory.spec import load_spec
    from mlfactory.spec._load import dataset_catalog

    spec = load_spec(file, set_ or [])
    if as_json:
        document: dict[str, object] = {"spec": spec.model_dump(mode="json")}
        try:
            resolved = spec.resolve(current_settings(ctx))
        except DataError as exc:
            document["resolved"], document["problem"] = None, str(exc)
        else:
            document["resolved"] = resolved.to_dict()
            document["roles"] = resolved.dataset.role_decisions
            if spec.segments is not None:
                from mlfactory.fleet._plan import describe_plan, plan_for

                document["segments"] = describe_plan(plan_for(resolved))
        print_json(document)
        return
    console.print(_spec_table(spec))
    try:
        resolved = spec.resolve(current_settings(ctx))
    except DataError as exc:
        what = (
            "data cannot train" if isinstance(exc, DegenerateDataError) else "dataset not available"
        )
        console.print(f"[yellow]{what}:[/] {escape(str(exc))}")
        catalog = dataset_catalog() or {}
        task = spec.task or (catalog.get(spec.dataset) if isinstance(spec.dataset, str) else None)
        for recipe, model in spec.cells():
            model_task = task or MODELS[model].tasks[0]
            estimator = MODELS[model].factories[model_task](spec.seed)
            console.print(
                f"[bold]{escape(recipe)}+{escape(model)}[/]: Pipeline(preproc={recipe!r} recipe "
                f"(columns come from the dataset), clf={escape(repr(estimator))})",
                soft_wrap=True,
            )
        return
    decisions = resolved.dataset.role_decisions
    if decisions:
        title = escape("column roles (override with [dataset.roles])")  # not rich markup
        roles = Table(title=title, show_header=True)
        for column in ("column", "role", "reason"):
            roles.add_column(column, overflow="fold")
        for decision in decisions:
            used = decision["role"] in ("numeric", "categorical", "boolean", "target")
            style = None if used else "yellow"
            roles.add_row(
                *(escape(str(decision[k])) for k in ("column", "role", "reason")), style=style
            )
        console.print(roles)
    split = Table(title="train/test split", show_header=True)
    split.add_column("field")
    split.add_column("value", overflow="fold")
    for key, value in resolved.to_dict()["split"].items():
        split.add_row(key, escape(str(value)))
    console.print(split)
    console.print(f"[bold]cv:[/] {escape(repr(resolved.cv))}", soft_wrap=True)
    console.print(
        f"[bold]scoring:[/] {', '.join(resolved.scoring)}  [bold]refit:[/] {resolved.refit}"
    )
    if spec.segments is not None:
        _print_segments(resolved)
    for cell in resolved.cells:
        console.rule(escape(cell.label))
        console.print(escape(cell.pipeline.__repr__(N_CHAR_MAX=100_000)), soft_wrap=True)
        if cell.search_source:
            console.print(f"search: {escape(cell.search_source)}", soft_wrap=True)
        if cell.skipped:
            console.print(
                f"[yellow]{len(cell.skipped)} grid combination(s) left out[/] (the solver "
                f"rejects them): {escape('; '.join(cell.skipped))}",
                soft_wrap=True,
            )


def _print_segments(resolved, shown: int = 20) -> None:
    """The fleet's segments: sizes and which use the fallback (largest first, then a count)."""
    from mlfactory.fleet._plan import describe_plan, plan_for

    plan = describe_plan(plan_for(resolved))
    console.print(
        f"[bold]segments by {escape(', '.join(plan['by']))}:[/] {plan['segments']} "
        f"({plan['own_model']} with their own model, {plan['fallback_segments']} below "
        f"min_rows={plan['min_rows']}; fallback = {plan['fallback']})",
        soft_wrap=True,
    )
    table = Table(show_header=True)
    for column in ("segment", "rows", "train", "test", "model"):
        table.add_column(
            column, overflow="fold", justify="left" if column in ("segment", "model") else "right"
        )
    rows = plan["segment_rows"]
    small = [r for r in rows if r["model"] != "own"]
    listed = rows[:shown] + [r for r in small if r not in rows[:shown]][:shown]
    for row in listed:
        table.add_row(
            escape(row["segment"]), str(row["rows"]), str(row["train_rows"]),
            str(row["test_rows"]), row["model"],
        )  # fmt: skip
    console.print(table)
    if len(listed) < len(rows):
        console.print(f"{len(rows) - len(listed)} more segment(s): --json lists them all")


@spec_app.command("models")
def models_(
    task: Annotated[
        Task | None, typer.Option("--task", "-t", help="Only models for this task.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the model zoo: names, tasks, whether installed, and shipped grid files."""
    from mlfactory.models import MODELS, default_distributions_path, default_grid_path, grids_dir

    if as_json:
        print_json(
            [
                {
                    "model": entry.name,
                    "tasks": [t.value for t in entry.tasks],
                    "installed": bool(entry.available),
                    "requires": entry.requires,
                }
                for entry in MODELS.values()
                if task is None or task.value in {t.value for t in entry.tasks}
            ]
        )
        return

    table = Table(title="model zoo (grids under mlfactory/resources/grids)", show_header=True)
    table.add_column("model", no_wrap=True)
    table.add_column("tasks")
    table.add_column("installed")
    table.add_column("grid / optuna space", overflow="fold")
    root = grids_dir()
    for entry in MODELS.values():
        tasks = [t for t in entry.tasks if task is None or t.value == task.value]
        if not tasks:
            continue
        files = []
        for t in tasks:
            files.append(default_grid_path(entry.name, t).relative_to(root).as_posix())
            files.append(default_distributions_path(entry.name, t).relative_to(root).as_posix())
        table.add_row(
            entry.name,
            "\n".join(t.value for t in tasks),
            "yes" if entry.available else f"no: pip install {entry.requires}",
            "\n".join(dict.fromkeys(files)),
        )
    console.print(table)


@spec_app.command()
def recipes(as_json: JsonOption = False) -> None:
    """List the preprocessing recipes."""
    from mlfactory.preprocessing import list_recipes

    if as_json:
        print_json(list_recipes())
        return
    table = Table(title="preprocessing recipes", show_header=True)
    table.add_column("recipe")
    table.add_column("what it does", overflow="fold")
    for name, text in list_recipes().items():
        table.add_row(name, text)
    console.print(table)
