"""Fleet fixtures: settings of the test's own home."""

from __future__ import annotations

import pytest

from mlfactory.settings import Settings, get_settings


@pytest.fixture
def settings() -> Settings:
    return get_settings()
