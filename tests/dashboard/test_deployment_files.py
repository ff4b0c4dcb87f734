"""Static checks of docker-compose.yml, Dockerfile and .env.example (no Docker engine here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from _tools import require_tool
from typer.testing import CliRunner

from mlfactory.cli import app

ROOT = Path(__file__).resolve().parents[2]
SECRETS = (
    "POSTGRES_PASSWORD",
    "MLFACTORY_API_KEY",
    "PGADMIN_DEFAULT_PASSWORD",
    "S3_SECRET_ACCESS_KEY",
)
runner = CliRunner()


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_compose_services_images_and_ports_on_loopback():
    services = _compose()["services"]
    assert set(services) == {
        "db",
        "serve",
        "dashboard",
        "cli",
        "dask-scheduler",
        "dask-worker",
        "objectstore",
        "objectstore-bucket",
        "pgadmin",
    }
    assert services["db"]["image"] == "postgres:15"
    assert services["serve"]["build"] == "." and services["dashboard"]["build"] == "."
    assert services["serve"]["command"][:1] == ["serve"]
    assert services["serve"]["command"][-4:] == ["--host", "0.0.0.0", "--port", "8080"]
    assert services["dashboard"]["command"] == ["dashboard", "--host", "0.0.0.0", "--port", "8050"]
    assert services["dask-worker"]["command"][0] == "tcp://dask-scheduler:8786"
    for name in ("dask-scheduler", "dask-worker", "pgadmin", "cli", "objectstore"):
        assert services[name]["profiles"], f"{name} should be optional (a profile)"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert services["serve"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_credentials_come_from_env_and_none_is_committed():
    services = _compose()["services"]
    env = services["serve"]["environment"]
    assert env["MLFACTORY_API_KEY"].startswith("${MLFACTORY_API_KEY:?")
    url = env["MLFACTORY_DB_URL"]
    assert url.startswith("postgresql+psycopg://${POSTGRES_USER:?")
    assert "${POSTGRES_PASSWORD:?" in url and "@db:5432/" in url
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in SECRETS:  # only ever referenced, never given a default
        assert not re.search(rf"{secret}:-", text) and not re.search(rf"{secret}=\S", text)
    example = _env_example()
    assert {"POSTGRES_USER", "POSTGRES_DB", *SECRETS} <= example.keys()
    assert all(example[secret] == "change-me" for secret in SECRETS)
    referenced = set(re.findall(r"\$\{(\w+)", text))
    assert referenced <= example.keys(), f"undocumented variables {referenced - example.keys()}"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert tracked.stdout == ""


def test_dockerfile_builds_the_service_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert 'pip install ".[postgres,s3]"' in text
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    cmd = next(line for line in instructions if line.startswith("CMD "))
    assert '"serve"' in cmd and '"0.0.0.0"' in cmd
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".git", ".venv", ".mlfactory"} <= set(ignored)


def test_compose_commands_match_the_cli():
    serve = runner.invoke(app, ["serve", "--help"])
    assert serve.exit_code == 0
    assert "--host" in serve.output and "--port" in serve.output


def test_docker_compose_config(tmp_path):
    """``docker-compose config`` (Debian's docker-compose package) validates the file; without
    ``.env`` it must refuse, naming the missing variable. Without docker-compose: skipped with
    the reason, a failure under CI=true."""
    binary = shutil.which("docker-compose")
    require_tool("docker-compose", binary is not None, "apt-get install docker-compose")
    assert binary is not None
    files = ("docker-compose.yml", "Dockerfile", ".dockerignore")
    for name in files:
        shutil.copy(ROOT / name, tmp_path / name)
    missing = subprocess.run([binary, "config", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0 and "set POSTGRES_USER in .env" in missing.stderr
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    profiles = ["--profile", "dask", "--profile", "admin", "--profile", "cli", "--profile", "s3"]
    valid = subprocess.run(
        [binary, *profiles, "config", "--services"], cwd=tmp_path, capture_output=True, text=True
    )
    assert valid.returncode == 0, valid.stderr
    assert set(valid.stdout.split()) == set(_compose()["services"])
