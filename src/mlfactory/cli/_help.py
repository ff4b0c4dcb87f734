"""Typer's Rich help and error panels without the two Rich modules mlfactory never shows.

``typer.rich_utils`` (imported by Typer for every help page and usage error) imports
``rich.markdown`` (the markdown-it parser) and ``rich.traceback`` (Pygments, ``rich.pretty``,
attrs) at its top: ~60 ms of the ~0.2 s ``mlfactory --help`` costs, for markdown help text
(mlfactory's is ``rich`` markup) and pretty tracebacks (off: errors are one line). They are
stood in for until first used (:mod:`mlfactory._deferred`): the output is the same (issue #21).
A command that prints no help nor error never imports ``typer.rich_utils`` (~10 ms).
"""

from __future__ import annotations

from mlfactory._deferred import import_deferring_when_imported

__all__ = ["load_light_rich_utils"]


def load_light_rich_utils() -> None:
    """When Typer imports ``typer.rich_utils``, stand in for ``Markdown`` and ``Traceback``."""
    import_deferring_when_imported(
        "typer.rich_utils", {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}
    )
