"""Reading a TOML spec file with one-line errors (experiment specs and line specs share it)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from mlfactory.exceptions import SpecError

__all__ = ["read_toml"]


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The table in ``path``; ``SpecError`` naming the file when it is missing or malformed.

    ``what`` names the file in messages ("spec file", "line spec").
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, expected a {what} (a TOML file)") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not a text {what}: byte {exc.start} is not UTF-8 (a TOML file is UTF-8)"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: malformed TOML: {exc}") from None
