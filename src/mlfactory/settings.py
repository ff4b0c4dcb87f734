"""Settings: one object read from ``MLFACTORY_*`` variables, ``.env`` and ``mlfactory.toml``.

Precedence, highest first: explicit arguments, environment variables, ``.env`` in the working
directory, ``mlfactory.toml`` in the working directory, defaults. With no configuration at all the
home folder ``./.mlfactory`` holds the data, artifacts, logs and the SQLite database.

Nothing is read at import time: call :func:`get_settings` (cached) or build :class:`Settings`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mlfactory.exceptions import ConfigError

if TYPE_CHECKING:  # SQLAlchemy loads with the first URL parsed, not with `mlfactory --help`
    from sqlalchemy.engine import URL

__all__ = [
    "LOG_LEVELS",
    "MIN_API_KEY_LENGTH",
    "PLACEHOLDER_SECRET",
    "Settings",
    "apply_telemetry_policy",
    "get_settings",
    "load_settings",
    "mask_secrets",
    "mask_url",
    "mask_urls_in_text",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
SUPPORTED_DB_BACKENDS = ("sqlite", "postgresql")
ENV_PREFIX = "MLFACTORY_"
TOML_FILE = "mlfactory.toml"
ENV_FILE = ".env"

# The value .env.example ships for every secret: a key equal to it was never replaced.
PLACEHOLDER_SECRET = "change-me"
# Shortest MLFACTORY_API_KEY accepted when the service or dashboard listens beyond loopback.
MIN_API_KEY_LENGTH = 16
MASK = "***"

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")
# ``name=value`` in a URL query (after ``?``, ``&`` or ``;``) or, libpq style, after a space
_PARAMETER = re.compile(
    r"(?P<head>(?P<sep>[?&;]|(?<![^\s,(\[{'\"]))(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=)"
    r"(?P<value>(?:[^&;\s'\"<>]|;(?![A-Za-z_][A-Za-z0-9_.\-]*=))+)"
)
# names whose value is a secret in a URL query: password, pwd, sslpassword, token, api_key, ...
_SECRET_QUERY_NAME = re.compile(
    r"pass|pwd|secret|token|key|credential|signature|^sig$|^auth$", re.IGNORECASE
)
# outside a URL query only unmistakable names, so that ``key=value`` in prose stays readable
_SECRET_TEXT_NAME = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)


def _mask_parameter(match: re.Match[str]) -> str:
    in_query = match["sep"] in ("?", "&", ";")
    names = _SECRET_QUERY_NAME if in_query else _SECRET_TEXT_NAME
    if names.search(match["name"]) and match["value"] != MASK:
        return match["head"] + MASK
    return match[0]


def mask_urls_in_text(text: str) -> str:
    """Mask every secret of a URL inside free text: the password of ``scheme://user:pw@host``
    and the value of ``?password=``, ``&token=``, ``key=``-like query parameters (any case)."""
    return _PARAMETER.sub(_mask_parameter, _URL_PASSWORD.sub(rf"\g<head>{MASK}", text))


def mask_url(url: str | URL) -> str:
    """Return the URL with its password and secret query parameters replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    masked = mask_urls_in_text(str(url))  # first: rendering may percent-encode a secret
    try:
        parsed = make_url(masked)
    except (ArgumentError, ValueError, TypeError):
        return masked
    if parsed.password is None or parsed.password == MASK:
        return masked  # kept as written
    return mask_urls_in_text(parsed.render_as_string(hide_password=True))


def _mask_string(text: str) -> str:
    masked = mask_urls_in_text(text)
    if "://" in text:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            password = make_url(text.strip()).password
        except (ArgumentError, ValueError, TypeError):
            password = None
        if password and str(password) in masked:  # a password the text pattern cannot see
            return mask_url(text.strip())
    return masked


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, strings; anything else as is) with every URL masked.

    Walks any nested structure, so a URL in any field of a spec, present or future, is masked
    before it becomes a parameter, a tag, an artifact or a page. A text value under a key named
    like a secret (``password``, ``pwd``, ``secret``, ``token``) is masked whole.
    """
    if isinstance(value, str):
        return _mask_string(value)
    if isinstance(value, dict):
        return {
            mask_secrets(key): MASK
            if isinstance(key, str) and isinstance(item, str) and _SECRET_TEXT_NAME.search(key)
            else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(mask_secrets(item) for item in value)
    return value


class Settings(BaseSettings):
    """Resolved configuration of mlfactory."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        toml_file=TOML_FILE,
        validate_default=True,
    )

    home: Path = Field(
        default=Path(".mlfactory"),
        description="Folder holding data/, artifacts/, logs/ and the default SQLite database.",
    )
    db_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the tracking and results database "
        "(default: SQLite file in the home; e.g. postgresql+psycopg://user:pass@host/db).",
    )
    artifact_root: Path | str | None = Field(
        default=None,
        description="Where MLflow stores artifacts (default: HOME/artifacts; s3://bucket/prefix "
        "for an object store).",
    )
    store_url: str | None = Field(
        default=None,
        description="Root of the parquet data store, samples and reports (default: HOME/data; "
        "s3://bucket/prefix for an object store, credentials from the standard AWS variables).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible object store (MinIO, Ceph: http://host:9000); "
        "unset: AWS S3.",
    )
    log_level: LogLevel = Field(default="INFO", description="Console and file log level.")
    dask_scheduler_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "MLFACTORY_DASK_SCHEDULER_ADDRESS", "DASK_SCHEDULER_ADDRESS", "dask_scheduler_address"
        ),
        description="Address of a Dask scheduler (tcp://host:8786); local threads (or, for a "
        "big featurize, local processes) when unset.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="API key the prediction service and the dashboard require when set "
        f"(empty = unset; beyond loopback at least {MIN_API_KEY_LENGTH} characters).",
    )
    telemetry: bool = Field(
        default=False,
        description="Allow MLflow's usage telemetry (off by default: mlfactory never phones home).",
    )
    prediction_log_max_age_days: float | None = Field(
        default=30.0,
        ge=0,
        description="Prediction log retention: the service deletes logged requests older than "
        "this many days (0 or empty = keep them forever).",
    )
    prediction_log_max_rows: int | None = Field(
        default=None,
        ge=0,
        description="Prediction log retention: the service keeps at most this many logged "
        "requests (rows of prediction_requests), deleting the oldest (0 or empty = no limit).",
    )
    prediction_log_prune_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between two retention passes of the prediction log writer.",
    )
    prediction_log_prune_batch_rows: int = Field(
        default=1000,
        ge=1,
        description="Rows deleted per transaction by a retention pass (small batches keep "
        "the log's inserts flowing).",
    )
    heartbeat_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between the heartbeats an open run records (see stale_run_timeout).",
    )
    stale_run_timeout: float = Field(
        default=300.0,
        gt=0,
        description="A RUNNING run owned by another machine whose last heartbeat is older than "
        "this many seconds is stale (shown so, then marked FAILED by the next writer).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
        )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("prediction_log_max_age_days", "prediction_log_max_rows", mode="before")
    @classmethod
    def _empty_limit_is_unset(cls, value: Any) -> Any:
        """``MLFACTORY_PREDICTION_LOG_MAX_ROWS=`` (empty) means no limit."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("artifact_root", mode="before")
    @classmethod
    def _artifact_root_path_or_url(cls, value: Any) -> Any:
        """A local folder stays a :class:`Path`; ``s3://bucket/prefix`` stays a URL string."""
        if value is None or isinstance(value, Path):
            return value
        text = str(value).strip()
        if not text:
            return None
        return _check_store_url(text) if "://" in text else Path(text)

    @field_validator("store_url", "s3_endpoint_url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    @field_validator("store_url", mode="after")
    @classmethod
    def _check_store(cls, value: str | None) -> str | None:
        return _check_store_url(value) if value and "://" in value else value

    @field_validator("s3_endpoint_url", mode="after")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"malformed endpoint {mask_urls_in_text(value)!r}; expected http://host:port "
                "or https://host"
            )
        return value.rstrip("/")

    @field_validator("api_key", mode="after")
    @classmethod
    def _empty_api_key_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        """``MLFACTORY_API_KEY=`` (empty or blanks) means no key, never an empty key."""
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("db_url", mode="after")
    @classmethod
    def _check_db_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        raw = value.get_secret_value().strip()
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(raw)
        except ArgumentError:
            raise ValueError(
                f"malformed database URL {mask_urls_in_text(raw)!r}; expected "
                "sqlite:///path/to/file.db or postgresql+psycopg://user:password@host:port/dbname"
            ) from None
        if url.get_backend_name() not in SUPPORTED_DB_BACKENDS:
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r} in {mask_url(url)!r}; "
                f"expected one of: {', '.join(SUPPORTED_DB_BACKENDS)}"
            )
        return SecretStr(raw)

    # Derived locations -------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def store_root(self) -> str:
        """The data store's root: ``s3://bucket/prefix`` or an absolute local folder."""
        if self.store_url is None:
            return str(self.data_dir.resolve())
        if self.store_url.startswith("file://"):
            return str(Path(self.store_url.removeprefix("file://")).resolve())
        if "://" in self.store_url:
            return self.store_url.rstrip("/")
        return str(Path(self.store_url).resolve())

    @property
    def store_is_remote(self) -> bool:
        return "://" in self.store_root

    @property
    def artifacts_remote(self) -> bool:
        return isinstance(self.artifact_root, str)

    @property
    def artifacts_dir(self) -> Path:
        """The local artifact folder (HOME/artifacts when the artifact root is an object store)."""
        if isinstance(self.artifact_root, Path):
            return self.artifact_root
        return self.home / "artifacts"

    @property
    def artifact_uri(self) -> str:
        """Where MLflow stores artifacts, as a URI: ``s3://…`` or ``file:///…``."""
        if isinstance(self.artifact_root, str):
            return self.artifact_root.rstrip("/")
        return self.artifacts_dir.resolve().as_uri()

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def reports_root(self) -> str:
        """Where reports go: HOME/reports, or ``STORE/reports`` when the store is remote."""
        if self.store_is_remote:
            return f"{self.store_root}/reports"
        return str(self.reports_dir.resolve())

    @property
    def database_url(self) -> str:
        """The real database URL (with password): pass it to engines, never print it."""
        if self.db_url is not None:
            return self.db_url.get_secret_value()
        return f"sqlite:///{(self.home / 'mlfactory.db').resolve()}"

    @property
    def masked_database_url(self) -> str:
        return mask_url(self.database_url)

    @property
    def database_backend(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).get_backend_name()

    def ensure_dirs(self) -> None:
        """Create the home and its sub-folders (idempotent)."""
        folders = [self.home, self.logs_dir]
        if not self.store_is_remote:
            folders.append(self.data_dir)
        if not self.artifacts_remote:
            folders.append(self.artifacts_dir)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)

    def public_dict(self) -> dict[str, str]:
        """Every setting as display text, secrets masked."""
        return {
            "home": str(self.home.resolve()),
            "data_dir": str(self.data_dir.resolve()),
            "store_url": mask_urls_in_text(self.store_root),
            "artifacts_dir": mask_urls_in_text(self.artifact_uri)
            if self.artifacts_remote
            else str(self.artifacts_dir.resolve()),
            "s3_endpoint_url": mask_urls_in_text(self.s3_endpoint_url)
            if self.s3_endpoint_url
            else "(AWS default)",
            "logs_dir": str(self.logs_dir.resolve()),
            "db_url": self.masked_database_url,
            "log_level": self.log_level,
            "dask_scheduler_address": mask_url(self.dask_scheduler_address)
            if self.dask_scheduler_address
            else "(local threads)",
            "api_key": "***" if self.api_key is not None else "(not set)",
            "telemetry": "on" if self.telemetry else "off",
            "heartbeat_interval": f"{self.heartbeat_interval:g} s",
            "stale_run_timeout": f"{self.stale_run_timeout:g} s",
        }


# Object stores mlfactory speaks (fsspec protocols); a local path needs no scheme.
STORE_SCHEMES = ("s3", "s3a", "file")


def _check_store_url(url: str) -> str:
    """``s3://bucket[/prefix]`` (or ``file://…``) as given; ValueError naming what is expected."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in STORE_SCHEMES:
        raise ValueError(
            f"unsupported store {mask_urls_in_text(url)!r}; expected a local folder, "
            "file:///path or s3://bucket/prefix"
        )
    if scheme.lower() != "file" and (not rest or rest.startswith("/") or "@" in rest):
        raise ValueError(
            f"malformed store URL {mask_urls_in_text(url)!r}; expected s3://bucket/prefix "
            "(credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
            "never from the URL)"
        )
    return url


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _describe_error(error: ValidationError) -> str:
    """Turn pydantic's report into one line naming the variable and what was expected."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    value = first.get("input")
    if field == "log_level":
        expected = f"one of {', '.join(LOG_LEVELS)}"
        return f"invalid setting {_env_name(field)}={value!r}: expected {expected}"
    message = first["msg"].removeprefix("Value error, ")
    shown = mask_urls_in_text(str(value)) if isinstance(value, str) else value
    if field == "db_url":
        return f"invalid setting {_env_name(field)}: {message}"
    return f"invalid setting {_env_name(field)}={shown!r}: {message}"


def _unparsed_env_lines(path: Path) -> list[int]:
    """The lines of a ``.env`` file that python-dotenv cannot parse (and so skips)."""
    from dotenv.parser import parse_stream

    try:
        with path.open(encoding="utf-8") as handle:
            return [binding.original.line for binding in parse_stream(handle) if binding.error]
    except (OSError, UnicodeDecodeError):  # reported by the settings' own read
        return []


def _warn_unparsed_env_lines() -> None:
    """One warning naming ``.env`` and the lines skipped, never their text (it may hold a
    password), instead of python-dotenv's warning that names neither the file nor its folder."""
    import logging

    path = Path(ENV_FILE)
    lines = _unparsed_env_lines(path) if path.is_file() else []
    if lines:
        shown = ", ".join(map(str, lines[:5])) + (" ..." if len(lines) > 5 else "")
        logging.getLogger(__name__).warning(
            "%s: line(s) %s are not NAME=value and were skipped", path.resolve(), shown
        )


def load_settings(**overrides: Any) -> Settings:
    """Build settings from all sources; raise :class:`ConfigError` with a one-line message."""
    import logging

    _warn_unparsed_env_lines()
    dotenv_logger = logging.getLogger("dotenv.main")
    was_disabled, dotenv_logger.disabled = dotenv_logger.disabled, True  # said above, with the file
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe_error(exc)) from None
    except (ValueError, OSError) as exc:  # e.g. a malformed mlfactory.toml
        raise ConfigError(_describe_file_error(exc)) from None
    finally:
        dotenv_logger.disabled = was_disabled


def _describe_file_error(exc: Exception) -> str:
    """One line naming the configuration file (``.env``, ``mlfactory.toml``) that could not be
    read, and why."""
    import tomllib

    reason = mask_urls_in_text(str(exc))
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"{Path(TOML_FILE).resolve()}: malformed TOML: {reason}"
    if isinstance(exc, UnicodeDecodeError):
        for name in (ENV_FILE, TOML_FILE):
            try:
                Path(name).read_bytes().decode("utf-8")
            except UnicodeDecodeError as bad:
                return (
                    f"{Path(name).resolve()}: not a text file: byte {bad.start} is not UTF-8 "
                    "(configuration files are UTF-8)"
                )
            except OSError:
                continue
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: cannot read the configuration file: {exc.strerror}"
    return f"cannot read configuration (.env or {TOML_FILE}): {reason}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return load_settings()


def apply_telemetry_policy(settings: Settings) -> None:
    """Turn MLflow's usage telemetry off unless the user opted in."""
    if settings.telemetry:
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
