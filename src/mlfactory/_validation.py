"""One wording for pydantic validation errors of the TOML specs (experiment and line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["describe_validation_error"]


def describe_validation_error(
    error: Mapping[str, Any],
    sections: Mapping[str, type[BaseModel]],
    *,
    keep: Callable[[Any], bool] = lambda _part: True,
    no_keys: str = "(none)",
) -> str:
    """One line naming the field of a pydantic error and what was expected.

    ``sections`` maps a dotted section (``""`` for the top level) to its model, so an unknown
    key lists the valid ones; ``keep`` drops pydantic's own parts of the location (union tags).
    """
    loc = [str(p) for p in error["loc"] if keep(p)]
    field = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        section = ".".join(loc[:-1])
        model = sections.get(section)
        valid = ", ".join(model.model_fields) if model else no_keys
        where = f"[{section}]" if section else "the top level"
        return f"unknown key {field!r}; valid keys at {where}: {valid}"
    if kind == "missing":
        return f"missing required field {field!r}"
    message = error["msg"].removeprefix("Value error, ")
    shown = error.get("input")
    if isinstance(shown, dict):
        return f"field {field or 'spec'!r}: {message}"
    return f"field {field!r}: {message} (got {shown!r})"
