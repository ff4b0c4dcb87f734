"""``mlfactory dashboard``: the read-only web dashboard over data, runs, models and drift."""

from __future__ import annotations

from typing import Annotated

import typer

from mlfactory.cli._common import console, current_settings, require_database
from mlfactory.dashboard._defaults import DEFAULT_MLFLOW_URL
from mlfactory.exceptions import Terminated


def dashboard_command(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Interface to bind. Anything but loopback (127.0.0.1, ::1, localhost) "
            "requires MLFACTORY_API_KEY of 16+ characters, not the .env.example placeholder "
            "(browsers log in with any user name and the key "
            "as password)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8050,
    mlflow_url: Annotated[
        str,
        typer.Option(
            "--mlflow-url",
            help="Base URL of a running MLflow UI (mlfactory ui) the run pages link to.",
        ),
    ] = DEFAULT_MLFLOW_URL,
) -> None:
    """Serve the read-only dashboard until Ctrl-C.

    Pages: Data (bronze store status), Experiments (sortable run leaderboards, run details with
    evaluation plots and artifacts), Models (versions, aliases, test metrics, explain reports)
    and Monitoring (drift share over time, latest drift report). Works offline: no external
    scripts, fonts or styles.
    """
    from mlfactory.dashboard import run_dashboard
    from mlfactory.serving import check_bind
    from mlfactory.serving._server import auth_summary, check_port

    settings = current_settings(ctx)
    check_bind(settings, host)  # exits 2 with a clear message before anything starts
    require_database(settings)  # exits 3: a dashboard of error pages helps nobody
    check_port(host, port)  # exits 2: out of range, a host that does not resolve, in use
    auth = auth_summary(settings)  # what the app enforces, never more
    console.print(f"dashboard on [bold]http://{host}:{port}[/] ({auth}); Ctrl-C to stop")
    try:
        run_dashboard(settings, host=host, port=port, mlflow_url=mlflow_url)
    except (KeyboardInterrupt, Terminated):  # Ctrl-C or SIGTERM: the normal way to stop
        console.print("stopped")
