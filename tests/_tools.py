"""External tools some tests need (PostgreSQL server binaries, Chromium, docker-compose).

``make test`` installs them (scripts/ensure_test_deps.sh). When one is missing anyway, its tests
skip with the reason on a developer's machine, and fail under ``CI=true``: CI never passes by
skipping.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["in_ci", "require_tool"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_tool(what: str, found: bool, install: str) -> None:
    """Nothing when ``found``; else skip (fail under ``CI=true``) naming the tool and its fix."""
    if found:
        return
    message = f"{what} is missing: {install} (`make test` installs it)"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
