"""``mlfactory data …``: the command group; commands live in the modules that register on it."""

from __future__ import annotations

import typer

data_app = typer.Typer(
    help="Data engineering: ingest prices, build features, inspect the store, sample, synthesize.",
    no_args_is_help=True,
)
