"""``mlfactory runs …`` and ``mlfactory ui``: read the tracking store."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlfactory.cli._common import console, current_settings, fail
from mlfactory.cli._ids import JsonOption, finite, print_json, resolve_run_id, short_id
from mlfactory.exceptions import ConfigError

if TYPE_CHECKING:
    from mlfactory.settings import Settings


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
    as_json: JsonOption = False,
) -> None:
    """Newest runs first, with their held-out test metrics (ids shortened to 8 characters)."""
    from mlfactory.tracking import TrackingStoreEmpty
    from mlfactory.tracking._sqlread import list_runs_sql, sql_reader

    settings = current_settings(ctx)
    try:
        engine = sql_reader(settings)  # MLflow's tables read with SQL: no MLflow, no pandas
    except TrackingStoreEmpty as exc:
        if as_json:
            print_json([])
            return
        console.print(f"no runs yet ({exc}): try `mlfactory train examples/credit.toml`")
        return
    if engine is not None:
        found = list_runs_sql(engine, experiment, limit, include_children=all_)
    else:  # a store this MLflow's snapshot does not describe: MLflow's client reads it
        from mlfactory.tracking._queries import list_run_rows

        found = list_run_rows(_client(settings), experiment, limit, include_children=all_) or []
    columns = list(dict.fromkeys(key for row in found for key in row))
    rows = [{c: finite(row.get(c)) for c in columns} for row in found]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no runs yet: try `mlfactory train examples/credit.toml`")
        return
    metrics = [c for c in columns if c.startswith("test_")][:3]
    stale = sum(str(row["status"]).endswith("(stale)") for row in rows)
    table = Table(title="runs (newest first)" + (" · held-out test metrics" if metrics else ""))
    fixed = fixed_width_column
    fixed(table, "run", [short_id(row["run_id"]) for row in rows])
    for column in ("experiment", "name"):  # the columns that give way, with an ellipsis
        table.add_column(column, overflow="ellipsis", min_width=8)
    fixed(table, "status", [_cell(row["status"]) for row in rows], limit=18)
    fixed(table, "started", [_started(row["started"]) for row in rows])
    for metric in metrics:
        fixed(table, metric.removeprefix("test_"), [_cell(row[metric]) for row in rows], "right")
    for row in rows:
        table.add_row(
            short_id(row["run_id"]), _cell(row["experiment"]), _cell(row["name"]),
            _cell(row["status"]), _started(row["started"]), *[_cell(row[m]) for m in metrics],
        )  # fmt: skip
    console.print(table)
    if stale:
        console.print(
            f"{stale} stale run(s): their process is gone; the next `mlfactory train` or "
            "`mlfactory runs reap` marks them FAILED"
        )


def fixed_width_column(
    table: Table, header: str, cells: list[str], justify: str = "left", limit: int = 40
) -> int:
    """A column as wide as its widest cell (up to ``limit``): it never shrinks to a few letters
    when the terminal is narrow; the wrapable columns give way instead. Returns the width."""
    width = min(limit, max([len(header), *(len(c) for c in cells)]))
    table.add_column(header, width=width, no_wrap=True, overflow="ellipsis", justify=justify)
    return width


def _started(value: object) -> str:
    """``2026-12-01 19:05:33`` as ``2026-12-01 19:05`` (the list is for people; --json has all)."""
    text = _cell(value)
    return text[:16] if len(text) >= 16 and text[13:14] == ":" else text


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
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of it (4+ chars).")],
    as_json: JsonOption = False,
) -> None:
    """One run: status, params, metrics, tags and artifacts.

    Long values are cut to the terminal's width with an ellipsis: --json prints them whole.
    """
    settings = current_settings(ctx)
    record = _run_record(settings, resolve_run_id(settings, run_id))
    if as_json:
        record["metrics"] = {k: finite(v) for k, v in record["metrics"].items()}
        print_json(record)
        return
    console.print(f"[bold]run {record['run_id']}[/]", soft_wrap=True)
    for key in ("name", "status", "started", "ended", "artifact_uri"):
        console.print(f"  {key:<13}{escape(str(record[key]))}", soft_wrap=True)
    console.print(f"  {'artifacts':<13}{escape(', '.join(record['artifacts']))}", soft_wrap=True)
    for kind in ("params", "metrics", "tags"):
        if not record[kind]:
            continue
        table = Table(title=kind, title_justify="left", expand=False)
        key_width = fixed_width_column(table, "key", list(record[kind]), limit=44)
        # one line per value, cut with an ellipsis at the terminal's edge (keys stay whole)
        room = max(12, console.width - key_width - 7)
        table.add_column("value", no_wrap=True, overflow="ellipsis", max_width=room)
        for key, value in record[kind].items():
            table.add_row(escape(key), escape(_cell(value)))
        console.print(table)


@runs_app.command("compare")
def compare_command(
    ctx: typer.Context,
    run_ids: Annotated[
        list[str], typer.Argument(help="Two or more run ids (or unique prefixes of 4+ chars).")
    ],
    only_diff: Annotated[
        bool, typer.Option("--diff", help="Only the params and metrics that differ.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Params and metrics of several runs side by side."""
    from mlfactory.tracking._sqlread import compare_records

    settings = current_settings(ctx)
    full = [resolve_run_id(settings, run_id) for run_id in run_ids]
    readers: dict[str, object] = {}
    rows = compare_records({run_id: _run_record(settings, run_id, readers) for run_id in full})
    if only_diff:
        rows = [row for row in rows if row["differs"]]
    if as_json:
        print_json([
            {"kind": row["kind"], "key": row["key"], "differs": row["differs"],
             **{run_id: finite(v) for run_id, v in zip(full, row["values"], strict=True)}}
            for row in rows
        ])  # fmt: skip
        return
    table = Table(title="comparison")
    table.add_column("kind", no_wrap=True)
    table.add_column("key", no_wrap=True, overflow="ellipsis", ratio=1, min_width=12)
    for run_id in full:
        table.add_column(short_id(run_id), no_wrap=True, overflow="ellipsis", max_width=24)
    for row in rows:
        style = "bold yellow" if row["differs"] else None
        cells = [escape(_cell(v)) for v in row["values"]]
        table.add_row(row["kind"], escape(row["key"]), *cells, style=style)
    console.print(table)


def _run_record(
    settings: Settings, run_id: str, readers: dict[str, object] | None = None
) -> dict[str, object]:
    """One run's record (``tracking._queries.get_run``): read with SQL when the store allows
    it, else by MLflow's client. ``readers`` keeps the engine/client across several runs."""
    from mlfactory.tracking._sqlread import get_run_sql, sql_reader

    readers = {} if readers is None else readers
    if "engine" not in readers:
        readers["engine"] = sql_reader(settings)
    engine = readers["engine"]
    if engine is not None:
        record = get_run_sql(engine, run_id)  # type: ignore[arg-type]
        if record is not None:
            return record
    from mlfactory.tracking._queries import get_run

    if "client" not in readers:
        readers["client"] = _client(settings)
    return get_run(readers["client"], run_id)


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
    from mlfactory.serving._server import check_port, is_loopback
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
    check_port(host, port)  # exits 2: out of range or in use (MLflow would exit 0 after it)
    environment = dict(os.environ)
    environment["MLFLOW_BACKEND_STORE_URI"] = tracking_uri(settings)  # not on the command line
    # MLflow >= 3.5 starts a job runner and several huey consumers (GenAI jobs) that outlive the
    # server when it is stopped; the UI needs none of them.
    environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", host, "--port", str(port), "--workers", "1",
        "--default-artifact-root", settings.artifact_uri,
    ]  # fmt: skip
    console.print(f"MLflow UI on http://{host}:{port} (store: {settings.masked_database_url})")
    # its own process group, so that stopping the UI stops every process the server started
    server = subprocess.Popen(command, env=environment, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        console.print("stopping the MLflow UI")
        code = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_process_group(server)
    if code > 0:  # it died on its own (a signal we sent is a negative code)
        raise fail(f"the MLflow UI server exited with code {code}; its output is above", 1)


def _stop_process_group(process: subprocess.Popen, grace_seconds: float = 20) -> None:
    """SIGTERM the process's group; SIGKILL whatever is left of it after the grace period."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None and not _group_alive(process.pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
