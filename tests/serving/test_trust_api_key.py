"""Trust / secrets: an empty, short or placeholder MLFACTORY_API_KEY never guards a public bind,
and the banner says exactly what the server enforces."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _serving_helpers import free_port
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.settings import MIN_API_KEY_LENGTH, PLACEHOLDER_SECRET, load_settings

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * MIN_API_KEY_LENGTH

BAD_KEYS = {
    "empty": ("", "is not set"),
    "blanks": ("  \t ", "is not set"),
    "short": ("abc123", "has 6 characters; expected at least 16"),
    "placeholder": (PLACEHOLDER_SECRET, f"is the placeholder {PLACEHOLDER_SECRET!r}"),
    "placeholder-upper": (PLACEHOLDER_SECRET.upper(), "is the placeholder"),
    "fifteen": ("x" * (MIN_API_KEY_LENGTH - 1), "has 15 characters"),
}


def test_env_example_ships_the_placeholder_the_code_refuses():
    values = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert values["MLFACTORY_API_KEY"] == PLACEHOLDER_SECRET


@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_empty_or_blank_key_is_unset(monkeypatch, value):
    monkeypatch.setenv("MLFACTORY_API_KEY", value)
    settings = load_settings()
    assert settings.api_key is None
    assert settings.public_dict()["api_key"] == "(not set)"
    assert load_settings(api_key=value).api_key is None


@pytest.fixture
def busy_port():
    """A port already taken: should a bind slip through the check, uvicorn fails at once
    instead of serving until the test times out."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("command", [["serve", "credit"], ["dashboard"]])
@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_public_bind_without_a_real_key_is_refused_in_one_line(command, case, busy_port):
    key, reason = BAD_KEYS[case]
    result = CliRunner().invoke(
        app,
        [*command, "--host", "0.0.0.0", "--port", str(busy_port)],
        env={"MLFACTORY_API_KEY": key, "COLUMNS": "400"},
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: refusing to bind 0.0.0.0")
    assert reason in lines[0]
    assert "MLFACTORY_API_KEY" in lines[0]
    assert "serving" not in result.output and "dashboard on" not in result.output  # no banner
    if key.strip() and key.lower() != PLACEHOLDER_SECRET:
        assert key not in result.output  # the refusal never echoes the key


def test_a_real_key_passes_the_bind_check():
    from mlfactory.serving import check_bind

    check_bind(load_settings(api_key=GOOD_KEY), "0.0.0.0")
    check_bind(load_settings(api_key="short"), "127.0.0.1")  # loopback: any key guards


def _serve(home: Path, key: str, port: int, cwd: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MLFACTORY_HOME": str(home),
        "MLFACTORY_API_KEY": key,
        "COLUMNS": "400",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "mlfactory", "serve", "credit", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--no-log-predictions"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_up(url: str, process: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.mark.slow
@pytest.mark.parametrize("key", ["", "   "], ids=["empty", "blanks"])
def test_loopback_serve_with_an_empty_key_is_open_and_says_so(registered, tmp_path, key):
    port = free_port()
    process = _serve(registered.settings.home, key, port, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, process)
        answer = httpx.get(url + "/model", timeout=10)  # no Authorization header at all
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == "credit"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    banner = next(line for line in output.splitlines() if line.startswith("serving credit"))
    assert "no API key: open to every user of this machine" in banner
    assert "API key required" not in output
    assert re.search(r"on http://127\.0\.0\.1:\d+", banner)
