"""A module imported on first use: data modules name pandas at the top without paying for it
in commands that never touch a DataFrame (``data featurize``, a no-op ``data ingest``)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["lazy_module"]


class _LazyModule(ModuleType):
    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later lookups skip this method
        return getattr(module, attribute)


def lazy_module(name: str) -> Any:
    """``name`` imported when one of its attributes is first read."""
    return _LazyModule(name)
