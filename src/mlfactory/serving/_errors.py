"""Errors of the service, mapped to HTTP statuses in one place."""

from __future__ import annotations

from mlfactory.exceptions import ConfigError, DataError, MlfactoryError, ModelNotFound

__all__ = ["PayloadError", "ReloadConflict", "ServiceNotReady", "status_for"]


class PayloadError(DataError):
    """A request body the service cannot score: names the field and what was expected."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


class ReloadConflict(MlfactoryError):
    """The new version's input schema differs from the one the running API was built for."""


class ServiceNotReady(MlfactoryError):
    """The model has not finished loading."""


def status_for(error: MlfactoryError) -> int:
    """HTTP status of a library error: bad input 4xx, missing model 404, server-side 5xx."""
    if isinstance(error, PayloadError):
        return error.status_code
    if isinstance(error, DataError):
        return 422
    if isinstance(error, ModelNotFound):
        return 404
    if isinstance(error, ReloadConflict):
        return 409
    if isinstance(error, ServiceNotReady):
        return 503
    if isinstance(error, ConfigError):
        return 500
    return 500
