"""Typer's Rich help and error panels without the two Rich modules mlfactory never shows.

``typer.rich_utils`` (imported by Typer for every help page and usage error) imports
``rich.markdown`` (the markdown-it parser) and ``rich.traceback`` (Pygments, ``rich.pretty``,
attrs) at its top: ~60 ms of the ~0.2 s ``mlfactory --help`` costs, for markdown help text
(mlfactory's is ``rich`` markup) and pretty tracebacks (off: errors are one line). They are
stood in for until first used (:mod:`mlfactory._deferred`): the output is the same (issue #21).
"""

from __future__ import annotations

import contextlib

from mlfactory._deferred import import_deferring

__all__ = ["load_light_rich_utils"]


def load_light_rich_utils() -> None:
    """Import ``typer.rich_utils`` with stand-ins for ``Markdown`` and ``Traceback`` (once)."""
    with contextlib.suppress(ImportError):  # a Typer without Rich prints plain help
        import_deferring(
            "typer.rich_utils", {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}
        )
