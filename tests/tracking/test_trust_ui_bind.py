"""Trust / secrets: the MLflow UI has no authentication, so it never listens beyond loopback."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from mlfactory.cli import app


@pytest.fixture
def busy_port():
    """A taken port: should the bind slip through, the MLflow server fails at once."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "my-host.invalid"])
def test_ui_refuses_to_bind_beyond_loopback(busy_port, host):
    result = CliRunner().invoke(
        app, ["ui", "--host", host, "--port", str(busy_port)], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: refusing to bind {host}: the MLflow UI has no auth")
    assert "MLflow UI on" not in result.output  # nothing started, no banner
