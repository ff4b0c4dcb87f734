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
from mlfactory.settings import Settings, load_settings
from mlfactory.tracking import open_tracking

__all__ = ["SERVE_CONFIG_ENV", "app_from_env", "check_bind", "is_loopback", "run_server"]

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


def check_bind(settings: Settings, host: str) -> None:
    """Refuse to expose the service beyond this machine without an API key."""
    if not is_loopback(host) and settings.api_key is None:
        raise ConfigError(
            f"refusing to bind {host}: the service would be reachable from other machines "
            "without authentication; set MLFACTORY_API_KEY (clients send "
            "'Authorization: Bearer KEY') or bind 127.0.0.1"
        )


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
