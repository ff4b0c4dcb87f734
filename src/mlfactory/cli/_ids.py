"""Run ids on the command line: shown short (8 characters, like git), taken as a unique prefix."""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlfactory.exceptions import ModelNotFound, SpecError

if TYPE_CHECKING:
    from mlfactory.settings import Settings

__all__ = [
    "MIN_PREFIX",
    "SHORT",
    "AmbiguousRunId",
    "JsonOption",
    "finite",
    "looks_like_run_id",
    "print_json",
    "resolve_run_id",
    "short_id",
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (every field, whole values) for scripts.")
]
SHORT = 8  # characters of a run id shown in tables
MIN_PREFIX = 4  # the shortest prefix accepted, as git
_HEX = re.compile(r"[0-9a-f]+")
_CANDIDATES_SHOWN = 5


def short_id(run_id: str | None) -> str:
    """The first :data:`SHORT` characters of a run id ('' for none)."""
    return (run_id or "")[:SHORT]


def looks_like_run_id(text: str) -> bool:
    """Hexadecimal, :data:`MIN_PREFIX` to 32 characters: what a run id or its prefix looks like."""
    text = text.strip().lower()
    return MIN_PREFIX <= len(text) <= 32 and _HEX.fullmatch(text) is not None


class AmbiguousRunId(SpecError):
    """A prefix that several runs start with (exit 2: give more characters)."""


def resolve_run_id(settings: Settings, text: str) -> str:
    """The full id of the one run whose id starts with ``text`` (a full id is returned as is).

    A prefix shorter than :data:`MIN_PREFIX`, or not hexadecimal, is refused (exit 2); a prefix
    that no run starts with is :class:`ModelNotFound` (exit 1); several runs: one line listing
    them (exit 2). Deleted runs are not candidates.
    """
    prefix = text.strip().lower()
    if not looks_like_run_id(prefix):
        raise SpecError(
            f"{text!r} is not a run id: expected {MIN_PREFIX} to 32 hexadecimal characters "
            "(the short ids `mlfactory runs list` shows work)"
        )
    if len(prefix) == 32:
        return prefix
    matches = _runs_starting_with(settings, prefix)
    if not matches:
        raise ModelNotFound(f"no run id starts with {prefix!r} in the tracking store")
    if len(matches) > 1:
        shown = ", ".join(
            f"{run_id[:12]} ({experiment}/{name})"
            for run_id, name, experiment in matches[:_CANDIDATES_SHOWN]
        )
        more = (
            ""
            if len(matches) <= _CANDIDATES_SHOWN
            else f" and {len(matches) - _CANDIDATES_SHOWN} more"
        )
        error = AmbiguousRunId(
            f"run id prefix {prefix!r} is ambiguous: {len(matches)} runs start with it: "
            f"{shown}{more}"
        )
        error.hint = "give more characters of the run id"
        raise error
    return matches[0][0]


def _runs_starting_with(settings: Settings, prefix: str) -> list[tuple[str, str, str]]:
    """(run id, run name, experiment name) of the active runs whose id starts with ``prefix``."""
    from mlfactory.db import readonly_engine

    engine = readonly_engine(settings.database_url)  # a reader: never creates the store
    if engine is None:
        return []
    import sqlalchemy as sa

    query = sa.text(
        "SELECT r.run_uuid, r.name, e.name FROM runs r "
        "JOIN experiments e ON e.experiment_id = r.experiment_id "
        "WHERE r.run_uuid LIKE :pattern AND r.lifecycle_stage = 'active' "
        "ORDER BY r.start_time DESC LIMIT 50"
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(query, {"pattern": f"{prefix}%"}).all()
    except sa.exc.ProgrammingError:  # no MLflow tables yet
        return []
    except sa.exc.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [(str(r[0]), str(r[1] or ""), str(r[2] or "")) for r in rows]


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, for scripts (no colours, no wrapping)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, allow_nan=False) + "\n")


def finite(value: Any) -> Any:
    """NaN and infinities as ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value
