"""What every command shares: consoles, the settings of this invocation, error mapping.

Every failure ends as one ``error:`` line (and at most one ``hint:`` line) on stderr and an exit
code from :mod:`mlfactory.exceptions`: 1 failure, 2 usage/configuration, 3 database or scheduler
unreachable, 4 unexpected error (traceback in the log file), 130 Ctrl-C, 143 SIGTERM; a reader
that went away (``| head``) ends it silently with 1, as click does for ``--help``.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup
from typer.exceptions import TyperException

try:  # Typer >= 0.20 vendors click: importing click itself would cost ~20 ms for nothing
    from typer._click.globals import get_current_context
except ImportError:  # an older Typer runs on click
    from click import get_current_context

from mlfactory.exceptions import (
    EXIT_FAILURE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_UNAVAILABLE,
    MlfactoryError,
    ServiceUnavailable,
    Terminated,
)

if TYPE_CHECKING:  # pydantic loads with the first command that runs, not with --help
    from click import Context

    from mlfactory.settings import Settings

console = Console()
err_console = Console(stderr=True)

_MAX_MESSAGE = 300


def mask_urls_in_text(text: str) -> str:
    from mlfactory.settings import mask_urls_in_text as mask

    return mask(text)


def first_line(text: object) -> str:
    """The first non-blank line of ``text``, masked and cut to a readable length."""
    for line in str(text).strip().splitlines():
        if line.strip():
            line = mask_urls_in_text(line.strip())
            return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"
    return ""


def fail(message: str, code: int = 1, hint: str | None = None) -> typer.Exit:
    """Print a one-line error (and a one-line hint) and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(mask_urls_in_text(message))}", soft_wrap=True)
    if hint:
        err_console.print(f"[dim]hint:[/] {escape(mask_urls_in_text(hint))}", soft_wrap=True)
    return typer.Exit(code)


@dataclass(frozen=True)
class Failure:
    """What the user reads about an exception that is not an :class:`MlfactoryError`."""

    message: str
    code: int
    hint: str | None = None
    internal: bool = False  # a bug: the traceback goes to the log file


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 12:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _loaded(module: str, name: str) -> type | None:
    """A class of a module only if that module was imported (the CLI never imports it for this)."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


_CONNECTION_WORDS = (
    "connection refused",
    "connection failed",
    "could not connect",
    "could not translate host name",
    "name or service not known",
    "timeout expired",
    "timed out",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "the database system is",  # starting up / shutting down
    "no route to host",
    "unable to open database file",
    "database is locked",
)
_AUTH_WORDS = ("password authentication failed", "authentication failed", "no password supplied")


def database_failure(exc: BaseException) -> Failure | None:
    """A database error anywhere in ``exc``'s chain, as one line: unreachable or refused login
    (exit 3), or an SQL error (exit 1); ``None`` when the chain holds no database error."""
    kinds = tuple(
        k
        for k in (
            _loaded("sqlalchemy.exc", "DBAPIError"),
            _loaded("psycopg", "Error"),
            _loaded("sqlite3", "Error"),
        )
        if k is not None
    )
    if not kinds:
        return None
    found = next((e for e in _chain(exc) if isinstance(e, kinds)), None)
    if found is None:
        return None
    original = getattr(found, "orig", None) or found
    reason = first_line(original) or type(original).__name__
    invalidated = bool(getattr(found, "connection_invalidated", False))
    return classify_database_error(str(original), reason, invalidated)


def classify_database_error(text: str, reason: str, invalidated: bool = False) -> Failure:
    """Unreachable or login refused (exit 3) versus an SQL error (exit 1), from the driver's
    message ``text``; ``reason`` is the line shown."""
    lowered = text.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return Failure(
            f"the database refused the login: {reason}",
            EXIT_UNAVAILABLE,
            "check the user and password in MLFACTORY_DB_URL (or --db-url)",
        )
    if invalidated or any(word in lowered for word in _CONNECTION_WORDS):
        return Failure(
            f"cannot reach the database: {reason}",
            EXIT_UNAVAILABLE,
            "is the server running and MLFACTORY_DB_URL (or --db-url) right? "
            "`mlfactory info` checks the connection",
        )
    return Failure(
        f"database error: {reason}",
        EXIT_FAILURE,
        "`mlfactory db status` tells whether the schema needs `mlfactory db upgrade`",
    )


def require_database(settings: Settings) -> None:
    """Fail now, in one line and with exit 3, when the settings' database cannot be reached or
    refuses the login: before a command starts work it would lose (train, dashboard, drift).
    An SQLite path that is a folder or another kind of file is a setting to fix: exit 2."""
    from mlfactory.db import check_database, check_sqlite_file, not_a_database_error

    check_sqlite_file(settings.database_url)
    status = check_database(settings.database_url)
    if status.reachable:
        return
    not_sqlite = not_a_database_error(settings.database_url, status.detail)
    if not_sqlite is not None:  # a setting to fix, not an outage
        raise not_sqlite
    # any failure to connect is an outage here, whatever words the driver chose
    failure = classify_database_error(status.detail, first_line(status.detail), invalidated=True)
    error = ServiceUnavailable(failure.message)
    error.hint = failure.hint
    raise error


def describe_failure(exc: BaseException) -> Failure:
    """One line for any exception that escaped a command."""
    found = database_failure(exc)
    if found is not None:
        return found
    mlflow_error = _loaded("mlflow.exceptions", "MlflowException")
    if mlflow_error is not None and isinstance(exc, mlflow_error):
        return Failure(f"MLflow: {first_line(getattr(exc, 'message', exc))}", EXIT_FAILURE)
    if isinstance(exc, MemoryError):
        return Failure("out of memory", EXIT_FAILURE, "use a smaller sample or more memory")
    reason = first_line(exc)
    text = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    return Failure(f"unexpected error: {text}", EXIT_INTERNAL, internal=True)


# what click and Typer raise on purpose (usage errors, --help, typer.Exit): never remapped
# (Typer >= 0.20 vendors click: its usage errors derive from typer.exceptions.TyperException)
_PASS_THROUGH = (TyperException, typer.Exit, typer.Abort)


def _pass_through() -> tuple[type[BaseException], ...]:
    """Those, and click's own when click is loaded (an older Typer; nothing else raises them)."""
    clicks = (_loaded("click.exceptions", n) for n in ("ClickException", "Exit", "Abort"))
    return _PASS_THROUGH + tuple(k for k in clicks if k is not None)


HELP_ONLY = "mlfactory.help_only"  # ctx.meta key: this invocation only prints help


def _reader_gone(code: int) -> typer.Exit:
    """The reader of our output went away (``mlfactory … | head``): stop without a word and
    exit ``code`` (a failure's: 1, as click does for ``--help | head``; 2 below ``monitor``).
    Output still buffered goes to /dev/null, or Python would report the broken pipe again at
    exit."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return typer.Exit(code)


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(f"received signal {signum}")


class MlfactoryGroup(TyperGroup):
    """Turns every error below it into one line on stderr and a documented exit code.

    Library errors keep their ``exit_code``; database errors are 3 (unreachable, login refused)
    or 1 (SQL); Ctrl-C is 130 and SIGTERM 143 (a training run in progress ends KILLED);
    anything else is 4, with the traceback in the log file (printed too at ``--log-level
    DEBUG``). Groups below the root inherit it through Python's exceptions propagating up.
    """

    def invoke(self, ctx: Context):  # type: ignore[override]
        if ctx.parent is not None:  # a nested group: the root maps the errors
            return self._invoke_mapped(ctx)
        # read before click consumes them: the root callback skips settings for help alone
        words = [*getattr(ctx, "_protected_args", ()), *ctx.args]  # click 8.2+: private
        ctx.meta[HELP_ONLY] = bool(set(words) & set(ctx.help_option_names)) or (
            len(words) == 1 and hasattr(self.commands.get(words[0]), "commands")
        )  # a group alone prints its help
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return self._invoke_mapped(ctx)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _invoke_mapped(self, ctx: Context):
        try:
            return super().invoke(ctx)
        except _pass_through():
            raise
        except MlfactoryError as exc:
            raise self.on_failure(
                ctx, str(exc), exc.exit_code, getattr(exc, "hint", None)
            ) from None
        except KeyboardInterrupt:
            raise fail("interrupted (Ctrl-C)", EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            raise _reader_gone(self.failure_code(EXIT_FAILURE)) from None
        except Exception as exc:
            raise self._unexpected(ctx, exc) from None
        except BaseException as exc:
            run_terminated = _loaded("mlfactory.tracking._runs", "RunTerminated")
            in_run = run_terminated is not None and isinstance(exc, run_terminated)
            if in_run or isinstance(exc, Terminated):
                why = ": the run in progress is recorded KILLED" if in_run else ""
                raise fail(f"terminated (SIGTERM){why}", EXIT_TERMINATED) from None
            raise

    def failure_code(self, code: int) -> int:
        """The exit code of a failure of ``code`` (``monitor`` overrides it to keep 1 for
        drift)."""
        return code

    def on_failure(
        self, ctx: Context, message: str, code: int, hint: str | None = None
    ) -> typer.Exit:
        """The Exit for a failure of ``code``."""
        return fail(message, self.failure_code(code), hint)

    def _unexpected(self, ctx: Context, exc: Exception) -> typer.Exit:
        from mlfactory.logs import log_exception_to_file

        settings = _settings_of(ctx)
        failure = describe_failure(exc)
        if settings is not None and "sqlalchemy" in sys.modules:  # SQLite: "not a database"
            from mlfactory.db import not_a_database_error

            not_sqlite = not_a_database_error(settings.database_url, failure.message)
            if not_sqlite is not None:
                return self.on_failure(ctx, str(not_sqlite), not_sqlite.exit_code, not_sqlite.hint)
        log_file = log_exception_to_file(failure.message, exc)
        hint = failure.hint
        if failure.internal:
            where = f"the traceback is in {log_file}" if log_file else "no log file configured"
            hint = f"{where}; `mlfactory --log-level DEBUG ...` prints it here"
        if settings is not None and settings.log_level == "DEBUG":
            traceback.print_exception(exc, file=sys.stderr)
        return self.on_failure(ctx, failure.message, failure.code, hint)


def _settings_of(ctx: Context | None) -> Settings | None:
    from mlfactory.settings import Settings

    while ctx is not None:
        if isinstance(ctx.obj, Settings):
            return ctx.obj
        ctx = ctx.parent
    return None


def current_settings(ctx: typer.Context | None = None) -> Settings:
    """Settings resolved by the main callback (or built now, outside the CLI)."""
    from mlfactory.settings import get_settings

    found = _settings_of(ctx or get_current_context(silent=True))
    return found if found is not None else get_settings()
