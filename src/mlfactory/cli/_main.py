"""Entry point: global options, ``info`` and the command groups."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer
from rich.markup import escape

import mlfactory
from mlfactory.cli._choices import LOG_LEVELS
from mlfactory.cli._common import HELP_ONLY, MlfactoryGroup, console, current_settings, fail
from mlfactory.cli._ids import JsonOption, print_json
from mlfactory.cli._lazy import Lazy, LazyGroup
from mlfactory.exceptions import EXIT_UNAVAILABLE, ConfigError

if TYPE_CHECKING:
    from mlfactory.settings import Settings


class _Commands(LazyGroup, MlfactoryGroup):
    """mlfactory's commands in ``--help``'s order, each imported and built when asked for (a
    new command or group is named here; ``tests/test_cli_tree.py`` finds one that is not)."""

    lazy: ClassVar[dict[str, Lazy]] = {
        "info": Lazy("mlfactory.cli._main:info"),
        "demo": Lazy("mlfactory.cli._demo:demo"),
        "train": Lazy("mlfactory.cli._train:train_command"),
        "run": Lazy("mlfactory.cli._line:run_command"),
        "ui": Lazy("mlfactory.cli._runs:ui_command"),
        "promote": Lazy("mlfactory.cli._registry:promote_command"),
        "explain": Lazy("mlfactory.cli._explain:explain_command"),
        "serve": Lazy("mlfactory.cli._serve:serve_command"),
        "predict": Lazy("mlfactory.cli._predict:predict_command"),
        "dashboard": Lazy("mlfactory.cli._dashboard:dashboard_command"),
        "data": Lazy(
            "mlfactory.cli._data:data_app",
            registers=("mlfactory.cli._features", "mlfactory.cli._ingest", "mlfactory.cli._synth"),
        ),
        "spec": Lazy("mlfactory.cli._spec:spec_app"),
        "runs": Lazy("mlfactory.cli._runs:runs_app"),
        "models": Lazy("mlfactory.cli._registry:models_app"),
        "monitor": Lazy("mlfactory.cli._monitor:monitor_app"),
        "db": Lazy("mlfactory.cli._db:db_app"),
    }


app = typer.Typer(
    name="mlfactory",
    cls=_Commands,
    help="A factory of machine-learning models for tabular data: ingest, featurize, train, "
    "track, serve, explain and monitor, on one machine or a cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"mlfactory {mlfactory.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help=f"Override MLFACTORY_LOG_LEVEL ({', '.join(LOG_LEVELS)}).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Resolve settings once and configure logging for the whole invocation."""
    if _asks_for_help(ctx):
        return  # help needs no settings: `mlfactory GROUP --help` stays quick
    from mlfactory.logs import configure_logging
    from mlfactory.settings import apply_telemetry_policy, load_settings

    if log_level is not None and log_level.upper() not in LOG_LEVELS:
        raise fail(f"--log-level {log_level!r}: expected one of {', '.join(LOG_LEVELS)}", 2)
    overrides = {"log_level": log_level} if log_level else {}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    apply_telemetry_policy(settings)
    from mlfactory.storage import apply_storage_environment

    apply_storage_environment(settings)  # MLflow's S3 client finds MLFACTORY_S3_ENDPOINT_URL
    try:
        settings.logs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # MLFACTORY_HOME is a file, or a folder that cannot be written
        raise fail(
            f"cannot create the log folder {settings.logs_dir}: {exc.strerror}",
            2,
            f"MLFACTORY_HOME ({settings.home}) must be a folder mlfactory can write to",
        ) from None
    configure_logging(settings.log_level, settings.logs_dir)
    if settings.log_level != "DEBUG":  # MLflow's own INFO lines (schema migrations) are noise here
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
        import logging  # configure_logging has loaded it: free here, not on --help

        logging.getLogger("mlflow").setLevel(logging.WARNING)
    ctx.obj = settings
    from mlfactory._gc import end_start_up

    end_start_up()  # the command's own work runs with garbage collection, as always


def _asks_for_help(ctx: typer.Context) -> bool:
    """Whether this invocation only prints help (``mlfactory GROUP [COMMAND] --help``)."""
    return bool(ctx.meta.get(HELP_ONLY))


def info(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the resolved settings (secrets masked), paths and whether the database answers.

    An object store (MLFACTORY_STORE_URL, MLFACTORY_ARTIFACT_ROOT on s3://) is checked with a
    probe object written, read back and deleted. Exits with 3 when the database or the object
    store cannot be reached or refuses the login (2: a bucket that does not exist).
    """
    from mlfactory.db import check_database

    settings = current_settings(ctx)
    status = check_database(settings.database_url)
    stores = _store_checks(settings)
    if as_json:
        print_json(
            {
                "version": mlfactory.__version__,
                "settings": settings.public_dict(),
                "database": {"reachable": status.reachable, "detail": status.detail},
                "schema": _schema_line(settings.database_url) if status.reachable else None,
                "tracking": _tracking_line(settings) if status.reachable else None,
                "stores": {
                    name: {"url": check.url, "ok": check.ok, "detail": check.message}
                    for name, check in stores.items()
                },
            }
        )
        _exit_for(status.reachable, stores)
        return
    from rich.table import Table

    table = Table(title=f"mlfactory {mlfactory.__version__}", show_header=True)
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    for key, value in settings.public_dict().items():
        table.add_row(key, value)
    verdict = "[green]reachable[/]" if status.reachable else "[red]unreachable[/]"
    table.add_row("database", f"{verdict} ({status.detail})")
    if status.reachable:
        table.add_row("mlfactory schema", _schema_line(settings.database_url))
        table.add_row("tracking store", _tracking_line(settings))
    for name, check in stores.items():
        verdict = "[green]read and write ok[/]" if check.ok else f"[red]{escape(check.message)}[/]"
        table.add_row(name, f"{escape(check.url)}: {verdict}")
    console.print(table)
    _exit_for(status.reachable, stores)


def _store_checks(settings: Settings) -> dict:
    """The object stores in use, each checked with a probe object (local folders are not)."""
    from mlfactory.storage import check_store

    found = {}
    if settings.store_is_remote:
        found["data store"] = check_store(settings.store_root, settings)
    if settings.artifacts_remote:
        found["artifact store"] = check_store(settings.artifact_uri, settings)
    return found


def _exit_for(database_ok: bool, stores: dict) -> None:
    codes = [] if database_ok else [EXIT_UNAVAILABLE]
    codes += [check.error.exit_code for check in stores.values() if check.error is not None]
    if codes:
        raise typer.Exit(max(codes))


def _tracking_line(settings: Settings) -> str:
    """MLflow's side of the store: empty, ready, or an older/newer schema (read-only)."""
    from mlfactory.tracking import tracking_state

    try:
        return tracking_state(settings).message
    except Exception as exc:  # unreadable: say why, in one line
        return f"unknown ({str(exc).strip().splitlines()[0][:200]})"


def _schema_line(url: str) -> str:
    """The schema revision, read without writing (info never creates or migrates anything)."""
    from mlfactory.db import head_revision, readonly_engine, schema_status

    engine = readonly_engine(url)
    if engine is None:
        return f"no database yet (head revision {head_revision()})"
    try:
        status = schema_status(engine)
    except Exception as exc:  # unreadable: say why, in one line
        return f"unknown ({str(exc).strip().splitlines()[0][:200]})"
    hint = "" if status.up_to_date or status.empty else " — run `mlfactory db upgrade`"
    return status.describe() + hint


def main() -> None:
    """Console-script entry point."""
    from mlfactory.cli._help import load_light_rich_utils

    load_light_rich_utils()  # help and usage errors: ~60 ms less (the same panels)
    app()
