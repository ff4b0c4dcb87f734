"""Typer's Rich help and error panels without the two Rich modules mlfactory never shows.

``typer.rich_utils`` (imported by Typer for every help page and usage error) imports
``rich.markdown`` (the markdown-it parser) and ``rich.traceback`` (Pygments, ``rich.pretty``,
attrs) at its top: ~60 ms of the ~0.2 s ``mlfactory --help`` costs, for markdown help text
(mlfactory's is ``rich`` markup) and pretty tracebacks (off: errors are one line). They are
imported here behind stand-ins that load the real class on first use, so the output is the same
and nothing is lost if either is ever used (issue #21).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["load_light_rich_utils"]

# module -> the one name typer.rich_utils takes from it
_DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


class _Deferred(type):
    """A stand-in class: calling it or reading an attribute uses the real class, loaded then."""

    _module: str

    def _real(cls) -> type:
        import importlib

        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls._real(), name)

    def __instancecheck__(cls, instance: object) -> bool:
        return cls._module in sys.modules and isinstance(instance, cls._real())


def load_light_rich_utils() -> None:
    """Import ``typer.rich_utils`` with stand-ins for ``Markdown`` and ``Traceback`` (once;
    nothing happens when it or those modules are loaded already)."""
    if "typer.rich_utils" in sys.modules:
        return
    placed: dict[str, types.ModuleType] = {}
    for module, name in _DEFERRED.items():
        if module in sys.modules:
            continue
        stand_in = types.ModuleType(module)
        setattr(stand_in, name, _Deferred(name, (), {"_module": module}))
        placed[module] = stand_in
    sys.modules.update(placed)
    try:
        import typer.rich_utils  # noqa: F401
    except ImportError:  # Typer without Rich support: it prints plain help, nothing to do
        pass
    finally:
        for module, stand_in in placed.items():  # later imports load the real modules
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]
