"""What every command shares: consoles, the settings of this invocation, error mapping."""

from __future__ import annotations

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from mlfactory.exceptions import MlfactoryError
from mlfactory.settings import Settings, get_settings, mask_urls_in_text

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(mask_urls_in_text(message))}", soft_wrap=True)
    return typer.Exit(code)


class MlfactoryGroup(TyperGroup):
    """Turns library errors anywhere below it into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except MlfactoryError as exc:
            raise fail(str(exc), exc.exit_code) from None


def current_settings(ctx: typer.Context | None = None) -> Settings:
    """Settings resolved by the main callback (or built now, outside the CLI)."""
    context = ctx or click.get_current_context(silent=True)
    while context is not None:
        if isinstance(context.obj, Settings):
            return context.obj
        context = context.parent
    return get_settings()
