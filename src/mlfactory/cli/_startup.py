"""The settings module imported for a command without pydantic's plugin scan (issue #21).

Importing ``mlfactory.settings`` builds pydantic models (pydantic-settings' and mlfactory's), and
the first model pydantic builds in a process scans every installed distribution's entry points
for pydantic plugins (~30 ms). The CLI builds the settings without that scan, as Typer builds its
option validators; a later model (a spec's, the line's) still scans, once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module

__all__ = ["import_settings"]

_NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"


@contextmanager
def _without_pydantic_plugins() -> Iterator[None]:
    """pydantic's plugins off for the models built inside (a value the user set is kept)."""
    if _NO_PLUGINS in os.environ:
        yield
        return
    os.environ[_NO_PLUGINS] = "1"
    try:
        yield
    finally:
        os.environ.pop(_NO_PLUGINS, None)


def import_settings() -> None:
    """Import ``mlfactory.settings`` (once) without pydantic's plugin scan."""
    if "mlfactory.settings" not in sys.modules:
        with _without_pydantic_plugins():
            import_module("mlfactory.settings")
