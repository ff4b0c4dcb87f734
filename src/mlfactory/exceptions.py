"""One exception tree for mlfactory, and the exit codes of the command line.

The CLI maps these to one-line messages and exit codes; the service maps them to HTTP responses.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "ConfigError",
    "DataError",
    "DegenerateDataError",
    "MlfactoryError",
    "ModelNotFound",
    "ServiceUnavailable",
    "SpecError",
    "Terminated",
]

# Exit codes of every ``mlfactory`` command (README "Command line at a glance"). ``monitor`` uses
# 1 for "drift found" only: its other failures that would be 1 exit with 2.
EXIT_OK = 0
EXIT_FAILURE = 1  # the command failed: missing run/model, bad data, a query that failed...
EXIT_USAGE = 2  # a wrong option, setting, spec or input: fix the command line or the files
EXIT_UNAVAILABLE = 3  # the database or the Dask scheduler cannot be reached (or refused login)
EXIT_INTERNAL = 4  # an unexpected error (a bug): one line, the traceback in the log file
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)


class MlfactoryError(Exception):
    """Root of every error mlfactory raises on purpose (``hint``: a second line for the CLI)."""

    exit_code: int = 1
    hint: str | None = None


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


class ServiceUnavailable(MlfactoryError):
    """A service mlfactory needs (the database, a Dask scheduler) cannot be reached or refused
    the login: an outage or a wrong address/password, never a verdict about the data."""

    exit_code = EXIT_UNAVAILABLE


class Terminated(BaseException):  # like KeyboardInterrupt: not an Exception
    """Raised in the main thread when the process receives SIGTERM (the CLI exits 143)."""
