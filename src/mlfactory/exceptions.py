"""One exception tree for mlfactory.

The CLI maps these to one-line messages and exit codes; the service maps them to HTTP responses.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "DegenerateDataError",
    "MlfactoryError",
    "ModelNotFound",
    "SpecError",
]


class MlfactoryError(Exception):
    """Root of every error mlfactory raises on purpose."""

    exit_code: int = 1


class ConfigError(MlfactoryError):
    """A setting or configuration file holds a value mlfactory cannot use."""

    exit_code = 2


class DataError(MlfactoryError):
    """Input data is missing, unreadable or does not have the expected shape."""


class DegenerateDataError(DataError):
    """The data cannot train the spec at all (one class, too few rows, no feature columns)."""

    exit_code = 2


class SpecError(MlfactoryError):
    """An experiment spec names something that does not exist or is malformed."""

    exit_code = 2


class ModelNotFound(MlfactoryError):
    """A run, registered model, version or alias does not exist."""
