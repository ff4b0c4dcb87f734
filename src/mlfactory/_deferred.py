"""Import a module while some of the modules it imports are stood in for, until first used.

Typer's help module and Rich's logging handler import ``rich.markdown`` and ``rich.traceback``
at their top (~60 ms, with markdown-it, Pygments and attrs) for features mlfactory does not use:
markdown help text and pretty tracebacks. :func:`import_deferring` imports such a module with a
stand-in class in place of each named one; a stand-in loads the real class when it is first
called or read, so nothing is lost if the feature is ever used (issue #21).
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import Any

__all__ = ["import_deferring"]


class _Deferred(type):
    """A stand-in class: calling it or reading an attribute uses the real class, loaded then."""

    _module: str

    def _real(cls) -> type:
        return getattr(import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls._real(), name)

    def __instancecheck__(cls, instance: object) -> bool:
        return cls._module in sys.modules and isinstance(instance, cls._real())


def import_deferring(target: str, deferred: dict[str, str]) -> ModuleType:
    """Import ``target`` with each ``module -> class name`` of ``deferred`` stood in for (a
    module already loaded is used as it is; so is ``target`` when it is loaded already)."""
    if target in sys.modules:
        return sys.modules[target]
    placed: dict[str, ModuleType] = {}
    for module, name in deferred.items():
        if module in sys.modules:
            continue
        stand_in = ModuleType(module)
        setattr(stand_in, name, _Deferred(name, (), {"_module": module}))
        placed[module] = stand_in
    sys.modules.update(placed)
    try:
        return import_module(target)
    finally:
        for module, stand_in in placed.items():  # later imports load the real modules
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]
