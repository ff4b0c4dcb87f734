"""``mlfactory explain``: explanation report of a run's or a registered model."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.table import Table

from mlfactory.cli._common import console, current_settings
from mlfactory.cli._ids import looks_like_run_id, resolve_run_id
from mlfactory.exceptions import ModelNotFound

_STEPS = 7  # model, data, importance, partial dependence, SHAP, report, logging


def explain_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="RUN_ID (or a unique prefix of 4+ hex digits; a matrix parent means its best "
            "cell) or a registered model: NAME (its champion), NAME@alias or NAME/version.",
            show_default=False,
        ),
    ],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Rows to explain: a .csv/.parquet file with the model's columns and the target, "
            "or a registered dataset name (all its rows). Default: the run's held-out test set, "
            "rebuilt from its recorded spec (its reference sample if the dataset is gone).",
            show_default=False,
        ),
    ] = None,
    row: Annotated[
        int, typer.Option("--row", help="Row (0-based position in the data) of the SHAP waterfall.")
    ] = 0,
    max_rows: Annotated[
        int,
        typer.Option(
            "--max-rows",
            min=1,
            help="Bound the cost: explain a seeded sample of at most this many rows "
            "(model-agnostic SHAP uses at most 100 of them).",
        ),
    ] = 500,
    n_repeats: Annotated[
        int,
        typer.Option("--n-repeats", min=1, help="Shuffles per column (permutation importance)."),
    ] = 5,
    top_k: Annotated[
        int,
        typer.Option(
            "--top-k", min=1, help="Features in the tables and the one-way partial dependence."
        ),
    ] = 5,
    scoring: Annotated[
        str | None,
        typer.Option(
            "--scoring",
            help="scikit-learn scorer for permutation importance. Default: the run's refit metric.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Folder (or s3://bucket/prefix) for the PNGs, CSV tables and report.html. "
            "Default: HOME/reports/explain/RUN_ID (STORE/reports/… on an object store).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of sampling and shuffles.")] = 0,
    log_to_run: Annotated[
        bool,
        typer.Option(
            "--log/--no-log", help="Also log the files on the model's MLflow run (explain/)."
        ),
    ] = True,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Load a registered version that has no recorded SHA-256 (registered outside "
            "mlfactory promote); warns.",
        ),
    ] = False,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            help="A fleet: explain this segment's model (repeatable; 'fallback' for the "
            "fallback) with importance, partial dependence and SHAP, in one report.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Explain a model: permutation importance, partial dependence and SHAP, as one HTML report.

    Writes importance, one- and two-way partial dependence, SHAP mean-|value| bar, beeswarm and
    one-row waterfall plots (PNG), their tables (CSV) and report.html with every image embedded,
    then logs them on the model's run so the MLflow UI shows them under explain/.
    """
    from mlfactory.explain import explain_model

    settings = current_settings(ctx)
    if looks_like_run_id(model) and len(model) < 32:
        with contextlib.suppress(ModelNotFound):  # no run starts with it: a model's name
            model = resolve_run_id(settings, model)
    if not looks_like_run_id(model):  # a registered fleet: importance segment by segment
        from mlfactory.fleet._cli import explain_fleet_command

        if explain_fleet_command(
            settings,
            model,
            max_rows,
            n_repeats,
            top_k,
            seed,
            out,
            console,
            segment or (),
            log_to_run,
        ):
            return
    if segment:
        from mlfactory.exceptions import ConfigError

        raise ConfigError(f"--segment is for fleets; {model} is not a registered fleet")
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("explaining", total=_STEPS)

        def step(message: str) -> None:
            progress.update(task, description=message, advance=1)

        report = explain_model(
            settings,
            model,
            data=data,
            row=row,
            max_rows=max_rows,
            n_repeats=n_repeats,
            top_k=top_k,
            scoring=scoring,
            out=out,
            seed=seed,
            log_to_run=log_to_run,
            progress=step,
            allow_unverified=allow_unverified,
        )
    e = report.explanation
    console.print(f"explained [bold]{e.model_label}[/] on {e.rows} rows of {e.data_source}")
    if e.note:
        console.print(f"[yellow]note:[/] {e.note}")
    shap_top = e.shap.mean_abs().head(top_k)
    table = Table(title=f"top {top_k} features")
    table.add_column("rank", justify="right")
    table.add_column("feature (permutation)")
    table.add_column(f"drop in {e.importance.scoring}", justify="right")
    table.add_column("feature (SHAP, preprocessed)")
    table.add_column(f"mean |SHAP| ({e.shap.scale})", justify="right")
    imp_rows = list(e.importance.table.head(top_k).itertuples(index=False))
    shap_rows = list(shap_top.itertuples(index=False))
    for rank in range(max(len(imp_rows), len(shap_rows))):
        imp = imp_rows[rank] if rank < len(imp_rows) else None
        sha = shap_rows[rank] if rank < len(shap_rows) else None
        table.add_row(
            str(rank + 1),
            imp.feature if imp else "",
            f"{imp.mean:.4f} ± {imp.std:.4f}" if imp else "",
            sha.feature if sha else "",
            f"{sha.mean_abs_shap:.4f}" if sha else "",
        )
    console.print(table)
    console.print(f"report: {report.html}")
    for name, path in report.files.items():
        if name != "report":
            console.print(f"  {name}: {path}")
    if report.artifact_uri:
        console.print(f"logged on run {e.run_id}: {report.artifact_uri}")
