"""The populated factory, built once per session for the dashboard tests."""

from __future__ import annotations

import pytest
from _dashboard_factory import Factory, build_factory


@pytest.fixture(scope="session")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Factory:
    return build_factory(tmp_path_factory.mktemp("dashboard"))
