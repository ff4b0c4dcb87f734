"""The Dask scheduler address of ``train``, checked before any data is loaded."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from mlfactory.exceptions import ConfigError, ServiceUnavailable

__all__ = ["SCHEDULER_SCHEMES", "check_scheduler"]

SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_EXAMPLE = "tcp://10.0.0.5:8786"


def check_scheduler(address: str | None, timeout_s: float = 5.0) -> str | None:
    """``address`` stripped, after checking its form (exit 2) and that something listens there
    (exit 3); ``None`` (train locally) stays ``None``.

    Training loads the data, opens the tracking store and may search for minutes before it
    first talks to the cluster: a typo or a scheduler that is down is reported first, in a line.
    """
    if address is None:
        return None
    chosen = address.strip()
    parts = urlsplit(chosen)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        port = None
    if parts.scheme not in SCHEDULER_SCHEMES or not parts.hostname or port is None:
        error = ConfigError(
            f"invalid Dask scheduler address {chosen!r}: expected SCHEME://HOST:PORT with a scheme "
            f"of {', '.join(SCHEDULER_SCHEMES)}, such as {_EXAMPLE}"
        )
        error.hint = "omit --scheduler (and MLFACTORY_DASK_SCHEDULER_ADDRESS) to train locally"
        raise error
    if parts.scheme == "ucx":
        return chosen  # not a TCP socket we could probe
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        error = ServiceUnavailable(
            f"cannot reach the Dask scheduler at {chosen}: {exc.strerror or exc}"
        )
        error.hint = (
            "is `dask scheduler` running there? check --scheduler or "
            "MLFACTORY_DASK_SCHEDULER_ADDRESS"
        )
        raise error from None
    return chosen
