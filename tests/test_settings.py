from pathlib import Path

import pytest

from mlfactory.exceptions import ConfigError
from mlfactory.settings import (
    apply_telemetry_policy,
    load_settings,
    mask_url,
    mask_urls_in_text,
)


def test_defaults_put_everything_under_the_home(isolated_home: Path, monkeypatch):
    monkeypatch.delenv("MLFACTORY_HOME")
    settings = load_settings()
    assert settings.home == Path(".mlfactory")
    assert settings.data_dir == Path(".mlfactory/data")
    assert settings.logs_dir == Path(".mlfactory/logs")
    assert settings.artifacts_dir == Path(".mlfactory/artifacts")
    assert settings.database_url == f"sqlite:///{Path('.mlfactory/mlfactory.db').resolve()}"
    assert settings.log_level == "INFO"
    assert settings.database_backend == "sqlite"


def test_precedence_env_over_dotenv_over_toml_over_default(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFACTORY_HOME")
    (tmp_path / "mlfactory.toml").write_text(
        'home = "from-toml"\nlog_level = "ERROR"\nartifact_root = "toml-artifacts"\n'
    )
    (tmp_path / ".env").write_text("MLFACTORY_HOME=from-dotenv\nMLFACTORY_LOG_LEVEL=WARNING\n")
    monkeypatch.setenv("MLFACTORY_HOME", "from-env")

    settings = load_settings()

    assert settings.home == Path("from-env")  # env beats .env and toml
    assert settings.log_level == "WARNING"  # .env beats toml
    assert settings.artifact_root == Path("toml-artifacts")  # toml beats default
    assert settings.telemetry is False  # default


def test_explicit_arguments_beat_environment(monkeypatch):
    monkeypatch.setenv("MLFACTORY_LOG_LEVEL", "ERROR")
    assert load_settings(log_level="debug").log_level == "DEBUG"


def test_password_is_masked_everywhere_it_is_shown(monkeypatch):
    monkeypatch.setenv("MLFACTORY_DB_URL", "postgresql+psycopg://alice:hunter2@db.local:5432/ml")
    settings = load_settings()
    assert settings.database_url.endswith("alice:hunter2@db.local:5432/ml")
    assert settings.masked_database_url == "postgresql+psycopg://alice:***@db.local:5432/ml"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.public_dict())


def test_mask_urls_in_free_text():
    text = "could not connect to postgresql://u:p%40ss@h/db and sqlite:///x.db"
    assert (
        mask_urls_in_text(text) == "could not connect to postgresql://u:***@h/db and sqlite:///x.db"
    )
    assert mask_url("sqlite:///tmp/a.db") == "sqlite:///tmp/a.db"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MLFACTORY_LOG_LEVEL", "LOUD", "MLFACTORY_LOG_LEVEL='LOUD': expected one of DEBUG, INFO"),
        ("MLFACTORY_DB_URL", "not a url", "MLFACTORY_DB_URL: malformed database URL"),
        ("MLFACTORY_DB_URL", "mysql://u:pw@h/db", "unsupported database 'mysql'"),
        ("MLFACTORY_TELEMETRY", "maybe", "MLFACTORY_TELEMETRY='maybe'"),
    ],
)
def test_invalid_settings_give_one_line_naming_the_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert "pw@" not in message


def test_telemetry_is_off_unless_opted_in(monkeypatch):
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    apply_telemetry_policy(load_settings(telemetry=True))
    assert "MLFLOW_DISABLE_TELEMETRY" not in __import__("os").environ
    apply_telemetry_policy(load_settings())
    assert __import__("os").environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_importing_reads_nothing(tmp_path: Path):
    """Settings are built on first use, not at import (in a fresh interpreter: reloading the
    module here would give every later test a second ``Settings`` class)."""
    import os
    import subprocess
    import sys

    environment = {**os.environ, "MLFACTORY_LOG_LEVEL": "LOUD"}  # would fail if read at import
    code = "import mlfactory.settings, mlfactory.cli, mlfactory.logs; print('imported')"
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr
    failing = subprocess.run(
        [sys.executable, "-c", "import mlfactory.settings as s; s.get_settings()"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert failing.returncode != 0 and "LOUD" in failing.stderr  # the same value, on first use
