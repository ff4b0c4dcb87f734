import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_the_store_on_loopback(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env["MLFACTORY_HOME"] = str(tmp_path / ".mlfactory")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlfactory", "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
                    json={"max_results": 10},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                time.sleep(1)
        assert response is not None and response.status_code == 200
        names = [e["name"] for e in response.json().get("experiments", [])]
        assert "Default" in names
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}" in output
    # nothing the MLflow server started outlives the UI (MLflow 3.5+ starts job consumers)
    assert _processes_with(env["MLFACTORY_HOME"]) == []


def _processes_with(home: str) -> list[str]:
    """Command lines of live processes whose environment names this mlfactory home."""
    needle = f"MLFACTORY_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found
