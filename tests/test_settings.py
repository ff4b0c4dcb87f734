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


# The settings are read without pydantic-settings (issue #21): each rule below is one it had,
# or one a user would expect of it.


@pytest.mark.parametrize(
    ("variable", "text", "field", "expected"),
    [
        ("MLFACTORY_HEARTBEAT_INTERVAL", " 2.5 ", "heartbeat_interval", 2.5),
        ("MLFACTORY_STALE_RUN_TIMEOUT", "1e3", "stale_run_timeout", 1000.0),
        ("MLFACTORY_PREDICTION_LOG_MAX_ROWS", "500", "prediction_log_max_rows", 500),
        ("MLFACTORY_PREDICTION_LOG_MAX_ROWS", "", "prediction_log_max_rows", None),
        ("MLFACTORY_PREDICTION_LOG_MAX_AGE_DAYS", "", "prediction_log_max_age_days", None),
        ("MLFACTORY_PREDICTION_LOG_MAX_AGE_DAYS", "0", "prediction_log_max_age_days", 0.0),
        ("MLFACTORY_PREDICTION_LOG_PRUNE_BATCH_ROWS", "7", "prediction_log_prune_batch_rows", 7),
        ("MLFACTORY_LOG_LEVEL", "warning", "log_level", "WARNING"),
        ("MLFACTORY_STORE_URL", "  ", "store_url", None),
        ("MLFACTORY_S3_ENDPOINT_URL", "http://minio:9000/", "s3_endpoint_url", "http://minio:9000"),
        ("MLFACTORY_ARTIFACT_ROOT", "s3://bucket/runs", "artifact_root", "s3://bucket/runs"),
        ("MLFACTORY_ARTIFACT_ROOT", "local-artifacts", "artifact_root", Path("local-artifacts")),
        ("MLFACTORY_API_KEY", "   ", "api_key", None),
        ("MLFACTORY_DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786", "dask_scheduler_address",
         "tcp://10.0.0.5:8786"),
    ],
)  # fmt: skip
def test_a_variable_is_converted_to_its_settings_type(monkeypatch, variable, text, field, expected):
    monkeypatch.setenv(variable, text)
    value = getattr(load_settings(), field)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(word, True) for word in ("1", "true", "True", "YES", "y", "on", "t")]
    + [(word, False) for word in ("0", "false", "FALSE", "no", "n", "off", "f")],
)
def test_a_flag_takes_every_usual_spelling(monkeypatch, text, expected):
    monkeypatch.setenv("MLFACTORY_TELEMETRY", text)
    assert load_settings().telemetry is expected


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MLFACTORY_HEARTBEAT_INTERVAL", "0", "INTERVAL='0': expected a number > 0"),
        ("MLFACTORY_HEARTBEAT_INTERVAL", "soon", "='soon': expected a number"),
        ("MLFACTORY_STALE_RUN_TIMEOUT", "nan", "='nan': expected a number"),
        ("MLFACTORY_PREDICTION_LOG_MAX_ROWS", "2.5", "='2.5': expected a whole number"),
        ("MLFACTORY_PREDICTION_LOG_MAX_ROWS", "-1", "expected a whole number >= 0"),
        ("MLFACTORY_PREDICTION_LOG_PRUNE_BATCH_ROWS", "0", "expected a whole number >= 1"),
        ("MLFACTORY_HOME", "", "MLFACTORY_HOME='': expected a folder path"),
        ("MLFACTORY_STORE_URL", "ftp://x/y", "unsupported store 'ftp://x/y'"),
        ("MLFACTORY_S3_ENDPOINT_URL", "minio:9000", "malformed endpoint 'minio:9000'"),
    ],
)  # fmt: skip
def test_a_bad_value_names_the_variable_and_what_is_expected(
    monkeypatch, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=r"^invalid setting ") as info:
        load_settings()
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_bad_value_in_a_file_names_the_file(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFACTORY_HOME")
    (tmp_path / "mlfactory.toml").write_text("heartbeat_interval = -3\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        f"invalid setting heartbeat_interval=-3 in {tmp_path / 'mlfactory.toml'}: "
        "expected a number > 0"
    )
    (tmp_path / "mlfactory.toml").unlink()
    (tmp_path / ".env").write_text("MLFACTORY_DB_URL=mysql://u:secretpw@h/db\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"invalid setting MLFACTORY_DB_URL in {tmp_path / '.env'}: ")
    assert "unsupported database 'mysql'" in message and "secretpw" not in message


def test_toml_values_keep_their_types_and_an_unknown_key_is_named(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MLFACTORY_HOME")
    (tmp_path / "mlfactory.toml").write_text(
        'home = "h"\ntelemetry = true\nprediction_log_max_rows = 10\nheartbeat_interval = 5\n'
        'hoem = "typo"\n[tool.other]\nx = 1\n'
    )
    with caplog.at_level("WARNING", logger="mlfactory.settings"):
        settings = load_settings()
    assert (settings.home, settings.telemetry) == (Path("h"), True)
    assert (settings.prediction_log_max_rows, settings.heartbeat_interval) == (10, 5.0)
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "'hoem' is no setting and ignored" in warned and "tool" not in warned.split("(")[0]


def test_dotenv_expands_variables_and_takes_any_case_and_a_bom(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFACTORY_HOME")
    monkeypatch.setenv("BASE", "/srv")
    (tmp_path / ".env").write_bytes(
        "\ufeffMLFACTORY_HOME=${BASE}/factory\nmlfactory_log_level=error\n".encode()
    )
    settings = load_settings()
    assert settings.home == Path("/srv/factory")
    assert settings.log_level == "ERROR"


def test_the_dask_scheduler_has_two_names_and_mlfactorys_wins(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://dask:8786")
    assert load_settings().dask_scheduler_address == "tcp://dask:8786"
    monkeypatch.setenv("MLFACTORY_DASK_SCHEDULER_ADDRESS", "tcp://ours:8786")
    assert load_settings().dask_scheduler_address == "tcp://ours:8786"


def test_an_unknown_argument_is_refused():
    with pytest.raises(TypeError, match=r"unknown setting.*hmoe"):
        load_settings(hmoe="x")


def test_settings_are_frozen_picklable_and_never_show_a_secret(monkeypatch):
    import dataclasses
    import pickle

    monkeypatch.setenv("MLFACTORY_API_KEY", "k" * 20)
    settings = load_settings(db_url="postgresql+psycopg://u:hunter2@h/db")
    assert pickle.loads(pickle.dumps(settings)) == settings  # sent to Dask workers
    assert "hunter2" not in repr(settings) and "kkkk" not in repr(settings)
    assert "hunter2" not in str(settings.db_url)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k" * 20
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.home = Path("elsewhere")  # type: ignore[misc]


def test_a_tilde_is_the_users_home_in_every_local_path(tmp_path: Path, monkeypatch):
    """``home = "~/mlfactory"`` means the user's home, never a folder named ``~`` here."""
    monkeypatch.delenv("MLFACTORY_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "mlfactory.toml").write_text('home = "~/factory"\n')
    monkeypatch.setenv("MLFACTORY_ARTIFACT_ROOT", "~/artifacts")
    monkeypatch.setenv("MLFACTORY_STORE_URL", "~/store")
    settings = load_settings()
    assert settings.home == tmp_path / "me" / "factory"
    assert settings.artifacts_dir == tmp_path / "me" / "artifacts"
    assert settings.store_root == str(tmp_path / "me" / "store")
    assert not (tmp_path / "~").exists()
