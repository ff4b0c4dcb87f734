"""Run the dashboard with uvicorn (blocking), refusing unsafe binds like the service does."""

from __future__ import annotations

from mlfactory.dashboard._app import DEFAULT_MLFLOW_URL, create_dashboard_app
from mlfactory.serving import check_bind
from mlfactory.settings import Settings

__all__ = ["run_dashboard"]


def run_dashboard(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    mlflow_url: str = DEFAULT_MLFLOW_URL,
    log_level: str = "warning",
) -> None:
    """Serve the dashboard until interrupted. Raises ConfigError for a non-loopback bind
    without ``MLFACTORY_API_KEY``."""
    import uvicorn

    check_bind(settings, host)
    app = create_dashboard_app(settings, mlflow_url=mlflow_url)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
