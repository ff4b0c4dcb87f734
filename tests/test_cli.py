import re

from typer.testing import CliRunner

from mlfactory import __version__
from mlfactory.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "info" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_info_shows_home_masked_url_and_status(isolated_home, monkeypatch):
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert str(isolated_home.resolve()) in re.sub(r"\s+", "", result.output) or "mlfactory.db" in (
        result.output
    )
    assert "reachable" in result.output


def test_info_reports_unreachable_database_with_password_masked(monkeypatch):
    monkeypatch.setenv("MLFACTORY_DB_URL", "postgresql+psycopg://bob:topsecret@127.0.0.1:1/db")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 3  # EXIT_UNAVAILABLE, as every command with a dead database
    assert "topsecret" not in result.output
    assert "bob:***@127.0.0.1" in result.output
    assert "unreachable" in result.output


def test_invalid_setting_is_one_line_exit_2_without_traceback(monkeypatch):
    monkeypatch.setenv("MLFACTORY_LOG_LEVEL", "LOUD")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "MLFACTORY_LOG_LEVEL" in lines[0] and "DEBUG" in lines[0]
    assert "Traceback" not in result.output


def test_help_imports_neither_mlflow_nor_the_web_stack() -> None:
    """``mlfactory --help`` stays quick: MLflow, FastAPI and Jinja2 load with the commands that
    use them, not with the CLI (they were ~2.5 s of every invocation)."""
    import subprocess
    import sys

    code = (
        "import sys, mlfactory.cli._main; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'fastapi', 'jinja2'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
