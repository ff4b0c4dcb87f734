"""``mlfactory data …`` commands: features."""

from __future__ import annotations

from mlfactory.cli._data import data_app  # noqa: F401  (commands register on it)
