"""The ``mlfactory`` command line: thin commands over the library API."""

from mlfactory.cli._main import app, main

__all__ = ["app", "main"]
