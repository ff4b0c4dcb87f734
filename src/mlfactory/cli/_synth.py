"""``mlfactory data synth``: synthetic raw files in the exact formats the dataset loaders read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mlfactory.cli._choices import SyntheticName
from mlfactory.cli._common import console, current_settings
from mlfactory.cli._data import data_app


@data_app.command("synth")
def synth_command(
    ctx: typer.Context,
    name: Annotated[
        SyntheticName,
        typer.Argument(
            help="Which dataset: credit (Kaggle cs-training.csv), adult (UCI adult.data + "
            "adult.test) or fires (UCI forestfires.csv).",
            show_default=False,
        ),
    ],
    rows: Annotated[
        int, typer.Option("--rows", min=1, help="How many rows to generate (adult.test gets half).")
    ] = 10_000,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="File or folder to write (adult: a folder). Default: where the loader looks, "
            "HOME/data/raw/<name>/, so loading the dataset afterwards just works.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same file).")] = 0,
) -> None:
    """Write a synthetic raw dataset file in the real format, so the real loaders run offline.

    Labels come from a known model of the features (documented in docs/datasets.md), so models
    trained on it have something true to find. Files are written atomically (temp file + rename).
    """
    from mlfactory.datasets import SYNTHETIC, write_synthetic
    from mlfactory.datasets import SyntheticName as Name

    settings = current_settings(ctx)
    target = out if out is not None else SYNTHETIC[Name(name.value)].default_out(settings)
    written = write_synthetic(name.value, rows, target, seed, settings=settings)
    from rich.table import Table

    table = Table(title=f"synthetic {name.value}: {rows} rows, seed {seed}")
    table.add_column("file", overflow="fold")
    table.add_column("size", justify="right")
    for path in written:
        table.add_row(escape(str(path)), f"{path.stat().st_size / 1024:.1f} KB")
    console.print(table)
