"""mlfactory: a factory of machine-learning models for tabular data."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata when first asked for (importing
    ``importlib.metadata`` costs every command, ``--help`` included, ~50 ms)."""
    if name != "__version__":
        raise AttributeError(f"module 'mlfactory' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("mlfactory")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
