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
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from importlib.util import spec_from_loader
from types import ModuleType
from typing import Any

__all__ = ["import_deferring", "import_deferring_when_imported"]


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


class _FirstImport(MetaPathFinder, Loader):
    """Imports ``target`` with :func:`import_deferring` when something first imports it."""

    def __init__(self, target: str, deferred: dict[str, str]) -> None:
        self.target, self.deferred = target, deferred
        self._spec: ModuleSpec | None = None

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name != self.target:
            return None
        sys.meta_path.remove(self)  # once: the import below finds the module's own loader
        return spec_from_loader(name, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = import_deferring(self.target, self.deferred)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec  # executed already, by its own loader: keep its spec
        module.__loader__ = self._spec.loader if self._spec is not None else None


def import_deferring_when_imported(target: str, deferred: dict[str, str]) -> None:
    """Arrange for ``target`` to be imported by :func:`import_deferring` whenever something
    first imports it: a process that never needs it pays nothing (Typer imports its help
    module only to print help or an error)."""
    if target in sys.modules or any(
        isinstance(finder, _FirstImport) and finder.target == target for finder in sys.meta_path
    ):
        return
    sys.meta_path.insert(0, _FirstImport(target, deferred))
