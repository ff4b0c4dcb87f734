"""``mlfactory runs …`` and ``mlfactory ui``: read the tracking store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Annotated

import typer
from rich.table import Table

from mlfactory.cli._common import console, current_settings
from mlfactory.exceptions import ConfigError
from mlfactory.settings import Settings, mask_url

runs_app = typer.Typer(
    help="Inspect tracked runs: list, show one, compare several; reap stale runs."
)


def _client(settings: Settings):
    """A read-only client: readers never create the store, its tables or migrate them."""
    from mlfactory.tracking import open_tracking

    return open_tracking(settings, read_only=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value == value else ""
    return "" if value is None else str(value)


@runs_app.command("list")
def list_command(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 30,
    all_: Annotated[bool, typer.Option("--all", help="Include candidate (child) runs.")] = False,
) -> None:
    """Newest runs first, with their held-out test metrics."""
    from mlfactory.tracking import TrackingStoreEmpty
    from mlfactory.tracking._queries import list_runs

    try:
        client = _client(current_settings(ctx))
    except TrackingStoreEmpty as exc:
        console.print(f"no runs yet ({exc}): try `mlfactory train examples/credit.toml`")
        return
    frame = list_runs(client, experiment, limit, include_children=all_)
    if frame.empty:
        console.print("no runs yet: try `mlfactory train examples/credit.toml`")
        return
    metrics = [c for c in frame.columns if c.startswith("test_")][:3]
    frame = frame[["run_id", "experiment", "name", "status", "started", *metrics]]
    stale = int(frame["status"].str.endswith("(stale)").sum())
    table = Table(title="runs (newest first)")
    for column in frame.columns:
        table.add_column(column, no_wrap=column == "run_id", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    console.print(table)
    if stale:
        console.print(
            f"{stale} stale run(s): their process is gone; the next `mlfactory train` or "
            "`mlfactory runs reap` marks them FAILED"
        )


@runs_app.command("reap")
def reap_command(ctx: typer.Context) -> None:
    """Mark FAILED every RUNNING run whose process is gone (killed, crashed, machine lost).

    Same machine: the run's process is no longer alive. Another machine: no heartbeat for
    MLFACTORY_STALE_RUN_TIMEOUT seconds. `train` and `promote` do this by themselves.
    """
    from mlfactory.tracking import open_tracking, reap_stale_runs, tracking_state

    settings = current_settings(ctx)
    state = tracking_state(settings)
    if state.empty:
        console.print(f"no runs to reap ({state.message})")
        return
    reaped = reap_stale_runs(open_tracking(settings), settings.stale_run_timeout, "runs reap")
    for stale in reaped:
        console.print(f"{stale.run_id} ({stale.name}) marked FAILED: {stale.reason}")
    console.print(f"{len(reaped)} stale run(s) marked FAILED")


@runs_app.command("gc")
def gc_command(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count the rows that would be removed.")
    ] = False,
) -> None:
    """Remove tuning_results / cv_fold_results rows of runs deleted or gone in MLflow.

    Run it after `mlflow gc` or after deleting runs (UI, `mlflow runs delete`): rows of a run
    that is deleted, whose experiment is deleted, or that no longer exists are removed from both
    tables in one transaction. --dry-run prints the counts and removes nothing.
    """
    from mlfactory.tracking import open_tracking
    from mlfactory.tracking._gc import collect_result_rows

    settings = current_settings(ctx)
    report = collect_result_rows(settings, open_tracking(settings), dry_run=dry_run)
    console.print(report.summary())


@runs_app.command("show")
def show_command(
    ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="Run id.")]
) -> None:
    """One run: status, params, metrics, tags and artifacts."""
    from mlfactory.tracking._queries import get_run

    record = get_run(_client(current_settings(ctx)), run_id)
    header = Table(title=f"run {record['run_id']}", show_header=False)
    for key in ("name", "status", "started", "ended", "artifact_uri"):
        header.add_row(key, str(record[key]))
    header.add_row("artifacts", ", ".join(record["artifacts"]))
    console.print(header)
    for kind in ("params", "metrics", "tags"):
        table = Table(title=kind)
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in record[kind].items():
            table.add_row(key, _cell(value))
        console.print(table)


@runs_app.command("compare")
def compare_command(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    only_diff: Annotated[
        bool, typer.Option("--diff", help="Only the params and metrics that differ.")
    ] = False,
) -> None:
    """Params and metrics of several runs side by side."""
    from mlfactory.tracking._queries import compare_runs

    frame = compare_runs(_client(current_settings(ctx)), run_ids)
    if only_diff:
        frame = frame[frame["differs"]]
    table = Table(title="comparison")
    table.add_column("kind")
    table.add_column("key")
    for column in frame.columns:
        if column != "differs":
            table.add_column(column, overflow="fold")
    for (kind, key), row in frame.iterrows():
        style = "bold yellow" if row["differs"] else None
        table.add_row(kind, key, *[_cell(row[c]) for c in frame.columns if c != "differs"],
                      style=style)  # fmt: skip
    console.print(table)


def ui_command(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Interface to bind: loopback only (the MLflow UI has no login).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Launch the MLflow UI on the same tracking store and print its URL (Ctrl-C stops it).

    Loopback only: the MLflow UI has no authentication and can rename, change and delete runs
    and models, so another interface is refused (exit 2); reach it through an SSH tunnel.
    """
    from mlfactory.serving._server import is_loopback
    from mlfactory.tracking import tracking_uri

    if not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host}: the MLflow UI has no authentication and lets anyone who "
            "reaches it change or delete runs and registered models; bind 127.0.0.1 and use an "
            f"SSH tunnel (ssh -L {port}:127.0.0.1:{port} HOST) or the read-only "
            "`mlfactory dashboard`, which requires MLFACTORY_API_KEY"
        )
    from mlfactory.tracking import open_tracking

    settings = current_settings(ctx)
    open_tracking(settings)  # the MLflow UI writes: the store is created/initialised first
    environment = dict(os.environ)
    environment["MLFLOW_BACKEND_STORE_URI"] = tracking_uri(settings)  # not on the command line
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", host, "--port", str(port), "--workers", "1",
        "--default-artifact-root", settings.artifacts_dir.resolve().as_uri(),
    ]  # fmt: skip
    console.print(f"MLflow UI on http://{host}:{port} (store: {mask_url(settings.database_url)})")
    server = subprocess.Popen(command, env=environment)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.wait()
    except KeyboardInterrupt:
        console.print("stopping the MLflow UI")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
