"""Errors of the service, mapped to HTTP statuses (and MLflow's ``error_code``) in one place."""

from __future__ import annotations

from mlfactory.exceptions import ConfigError, DataError, MlfactoryError, ModelNotFound

__all__ = [
    "BAD_REQUEST",
    "INVALID_PARAMETER_VALUE",
    "PayloadError",
    "ReloadConflict",
    "ServiceNotReady",
    "error_code_for",
    "status_for",
]

BAD_REQUEST = "BAD_REQUEST"  # MLflow: the body cannot be read as a table
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"  # MLflow: the table does not fit the schema

# MLflow's ``databricks_pb2.ErrorCode`` names, by HTTP status (``mlflow.exceptions`` maps these
# codes back to the same statuses; 413, 415 and 422 have no code of their own there).
_ERROR_CODES = {
    400: BAD_REQUEST,
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: BAD_REQUEST,
    409: "RESOURCE_CONFLICT",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: BAD_REQUEST,
    422: INVALID_PARAMETER_VALUE,
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class PayloadError(DataError):
    """A request body the service cannot score: names the field and what was expected.

    ``error_code`` is MLflow's code for the error body; by default the status's
    (:func:`error_code_for`).
    """

    def __init__(self, message: str, status_code: int = 422, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code or error_code_for(status_code)


class ReloadConflict(MlfactoryError):
    """The new version's input schema differs from the one the running API was built for."""


class ServiceNotReady(MlfactoryError):
    """The model has not finished loading."""


def error_code_for(status: int, error: BaseException | None = None) -> str:
    """MLflow's ``error_code`` of an error answered with HTTP ``status``."""
    if isinstance(error, PayloadError):
        return error.error_code
    if isinstance(error, ModelNotFound):
        return "RESOURCE_DOES_NOT_EXIST"
    return _ERROR_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else BAD_REQUEST)


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
