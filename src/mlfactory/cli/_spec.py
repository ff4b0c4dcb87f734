"""``mlfactory spec …``: inspect experiment specs."""

from __future__ import annotations

import typer

spec_app = typer.Typer(help="Experiment specs: validate and show the resolved spec and pipeline.")
