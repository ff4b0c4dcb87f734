"""Run the service with uvicorn: secure bind check, one or several worker processes."""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any

from fastapi import FastAPI

from mlfactory.exceptions import ConfigError
from mlfactory.logs import get_logger
from mlfactory.registry import parse_model_ref, resolve_version
from mlfactory.settings import MIN_API_KEY_LENGTH, PLACEHOLDER_SECRET, Settings, load_settings
from mlfactory.tracking import open_tracking

__all__ = [
    "SERVE_CONFIG_ENV",
    "api_key_problem",
    "app_from_env",
    "auth_summary",
    "check_bind",
    "check_port",
    "is_loopback",
    "run_server",
]

logger = get_logger(__name__)
SERVE_CONFIG_ENV = "MLFACTORY_SERVE_CONFIG"  # how worker processes receive the app's arguments


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses other machines cannot reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_key_problem(settings: Settings) -> str | None:
    """Why ``MLFACTORY_API_KEY`` cannot guard a service other machines reach, or ``None``.

    The key itself is never part of the answer.
    """
    if settings.api_key is None:
        return "MLFACTORY_API_KEY is not set (an empty value counts as unset)"
    key = settings.api_key.get_secret_value()
    if key.strip().lower() == PLACEHOLDER_SECRET:
        return f"MLFACTORY_API_KEY is the placeholder {PLACEHOLDER_SECRET!r} from .env.example"
    if len(key) < MIN_API_KEY_LENGTH:
        return (
            f"MLFACTORY_API_KEY has {len(key)} characters; expected at least {MIN_API_KEY_LENGTH}"
        )
    return None


def check_bind(settings: Settings, host: str) -> None:
    """Refuse to expose the service beyond this machine without a real API key.

    Off loopback the key must be set, not the ``.env.example`` placeholder, and at least
    ``MIN_API_KEY_LENGTH`` characters long. One line, exit code 2 (``ConfigError``).
    """
    if is_loopback(host):
        return
    problem = api_key_problem(settings)
    if problem is not None:
        raise ConfigError(
            f"refusing to bind {host}: it would be reachable from other machines and {problem}; "
            f"set MLFACTORY_API_KEY to a random key of {MIN_API_KEY_LENGTH}+ characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))"; clients send '
            "'Authorization: Bearer KEY') or bind 127.0.0.1"
        )


def check_port(host: str, port: int, option: str = "--port") -> None:
    """Fail in one line (``ConfigError``, exit 2) when ``host:port`` cannot be listened on: a
    port outside 1-65535, a host that does not resolve, an address in use. uvicorn would print
    its own ``ERROR:`` line and exit 3, the code of an unreachable database."""
    import socket

    if not 1 <= port <= 65535:
        raise ConfigError(f"{option} {port} is not a TCP port; expected 1-65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: --host does not resolve ({exc})"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                f"pick another {option} or stop what listens there"
            ) from None


def auth_summary(settings: Settings) -> str:
    """What the banner says about authentication: exactly what the app will enforce."""
    if settings.api_key is None:
        return "no API key: open to every user of this machine"
    return "API key required"


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: arguments come from ``MLFACTORY_SERVE_CONFIG``."""
    from mlfactory.serving._app import create_app

    arguments: dict[str, Any] = json.loads(os.environ[SERVE_CONFIG_ENV])
    model_ref = arguments.pop("model_ref")
    return create_app(load_settings(), model_ref, **arguments)


def run_server(
    settings: Settings,
    model_ref: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "warning",
    **app_options: Any,
) -> None:
    """Serve ``model_ref`` until interrupted (blocks). Raises ConfigError for an unsafe bind."""
    import uvicorn

    from mlfactory.serving._app import create_app

    check_bind(settings, host)
    # a malformed or unknown reference fails here with one line, before uvicorn starts
    resolve_version(open_tracking(settings), parse_model_ref(model_ref))
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    common = {"host": host, "port": port, "log_level": log_level, "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(settings, model_ref, **app_options), **common)
        return
    os.environ[SERVE_CONFIG_ENV] = json.dumps({"model_ref": model_ref, **app_options})
    uvicorn.run("mlfactory.serving._server:app_from_env", factory=True, workers=workers, **common)
