"""Settings: one object read from ``MLFACTORY_*`` variables, ``.env`` and ``mlfactory.toml``.

Precedence, highest first: explicit arguments, environment variables, ``.env`` in the working
directory, ``mlfactory.toml`` in the working directory, defaults. With no configuration at all the
home folder ``./.mlfactory`` holds the data, artifacts, logs and the SQLite database.

Nothing is read at import time: call :func:`get_settings` (cached) or :func:`load_settings`.

Every command reads its settings before any work, so they are read with python-dotenv and
tomllib alone (what pydantic-settings reads them with): pydantic-settings and the pydantic it
imports took ~0.1 s of every command's start-up, half a no-op ``data ingest`` (issue #21).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlfactory.exceptions import ConfigError

if TYPE_CHECKING:  # SQLAlchemy loads with the first URL parsed, not with `mlfactory --help`
    from sqlalchemy.engine import URL

__all__ = [
    "LOG_LEVELS",
    "MIN_API_KEY_LENGTH",
    "PLACEHOLDER_SECRET",
    "Secret",
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


class Secret:
    """A text value never shown: ``repr`` and ``str`` give ``'**********'``; read it with
    :meth:`get_secret_value` where it is used (a database login, a key comparison)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


class _Invalid(ValueError):
    """A setting's value that cannot be used: which field, the value, what was expected."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.value, self.reason = field, value, reason


# Value converters: each takes what a source gives (text from the environment or ``.env``, a
# TOML value, a Python value from the caller) and returns the typed value or raises ValueError
# with what is expected. An empty text means "unset" wherever a field can be unset.


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _local_path(value: str | Path) -> Path:
    """A local path, ``~`` expanded as a shell would (``home = "~/mlfactory"`` is never a
    folder named ``~`` in the working directory)."""
    try:
        return Path(value).expanduser()
    except RuntimeError:  # no home directory to expand ~ to
        raise ValueError("cannot expand '~': the user's home directory is unknown") from None


def _folder(value: Any) -> Path:
    if isinstance(value, Path) or (isinstance(value, str) and value.strip()):
        return _local_path(value)
    raise ValueError("expected a folder path")


def _optional_text(value: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value.strip()


def _log_level(value: Any) -> str:
    level = value.strip().upper() if isinstance(value, str) else value
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError("expected true or false (also 1/0, yes/no, on/off)")


def _number(value: Any, whole: bool) -> float | int:
    """A finite number from a number or its text; an integer when ``whole``."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {kind}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        raise ValueError(f"expected {kind}") from None
    if not math.isfinite(number) or (whole and not number.is_integer()):
        raise ValueError(f"expected {kind}")
    return int(number) if whole else number


def _bounded(*, low: float, open_low: bool = False, whole: bool = False, unset: bool = False):
    """A converter to a number above ``low`` (``> low`` when ``open_low``, else ``>= low``);
    with ``unset``, an empty value is None."""
    word = "> " if open_low else ">= "

    def convert(value: Any) -> float | int | None:
        if unset and _blank(value):
            return None
        number = _number(value, whole)
        if number < low or (open_low and number == low):
            raise ValueError(f"expected {'a whole number' if whole else 'a number'} {word}{low:g}")
        return number

    return convert


def _secret(value: Any) -> Secret | None:
    """Empty or blanks is unset, never an empty secret."""
    if isinstance(value, Secret):
        value = value.get_secret_value()
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise ValueError("expected text")
    return Secret(value)


def _database_url(value: Any) -> Secret | None:
    secret = _secret(value)
    if secret is None:
        return None
    raw = secret.get_secret_value().strip()
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
    return Secret(raw)


def _artifact_root(value: Any) -> Path | str | None:
    """A local folder stays a :class:`Path`; ``s3://bucket/prefix`` stays a URL string."""
    if isinstance(value, Path):
        return _local_path(value)
    text = _optional_text(value)
    if text is None:
        return None
    return _check_store_url(text) if "://" in text else _local_path(text)


def _store_url(value: Any) -> str | None:
    text = _optional_text(value)
    if text is None:
        return None
    return _check_store_url(text) if "://" in text else str(_local_path(text))


def _endpoint_url(value: Any) -> str | None:
    text = _optional_text(value)
    if text is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"malformed endpoint {mask_urls_in_text(text)!r}; expected http://host:port "
            "or https://host"
        )
    return text.rstrip("/")


def _about(convert: Any, help: str, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    """A setting's converter, description and, beside ``MLFACTORY_<NAME>``, the other
    variable names that set it (a field's metadata)."""
    return {"convert": convert, "help": help, "aliases": aliases}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of mlfactory: build it with :func:`load_settings` (every source)
    or directly (the values given, then the defaults); every value is converted and checked."""

    home: Path = field(
        default=Path(".mlfactory"),
        metadata=_about(
            _folder,
            "Folder holding data/, artifacts/, logs/ and the default SQLite database.",
        ),
    )
    db_url: Secret | None = field(
        default=None,
        metadata=_about(
            _database_url,
            "SQLAlchemy URL of the tracking and results database (default: SQLite file in the "
            "home; e.g. postgresql+psycopg://user:pass@host/db).",
        ),
    )
    artifact_root: Path | str | None = field(
        default=None,
        metadata=_about(
            _artifact_root,
            "Where MLflow stores artifacts (default: HOME/artifacts; s3://bucket/prefix for an "
            "object store).",
        ),
    )
    store_url: str | None = field(
        default=None,
        metadata=_about(
            _store_url,
            "Root of the parquet data store, samples and reports (default: HOME/data; "
            "s3://bucket/prefix for an object store, credentials from the standard AWS variables).",
        ),
    )
    s3_endpoint_url: str | None = field(
        default=None,
        metadata=_about(
            _endpoint_url,
            "Endpoint of an S3-compatible object store (MinIO, Ceph: http://host:9000); "
            "unset: AWS S3.",
        ),
    )
    log_level: LogLevel = field(
        default="INFO", metadata=_about(_log_level, "Console and file log level.")
    )
    dask_scheduler_address: str | None = field(
        default=None,
        metadata=_about(
            _optional_text,
            "Address of a Dask scheduler (tcp://host:8786); local threads (or, for a big "
            "featurize, local processes) when unset.",
            aliases=("DASK_SCHEDULER_ADDRESS",),
        ),
    )
    api_key: Secret | None = field(
        default=None,
        metadata=_about(
            _secret,
            "API key the prediction service and the dashboard require when set (empty = unset; "
            f"beyond loopback at least {MIN_API_KEY_LENGTH} characters).",
        ),
    )
    telemetry: bool = field(
        default=False,
        metadata=_about(
            _flag,
            "Allow MLflow's usage telemetry (off by default: mlfactory never phones home).",
        ),
    )
    prediction_log_max_age_days: float | None = field(
        default=30.0,
        metadata=_about(
            _bounded(low=0, unset=True),
            "Prediction log retention: the service deletes logged requests older than this many "
            "days (0 or empty = keep them forever).",
        ),
    )
    prediction_log_max_rows: int | None = field(
        default=None,
        metadata=_about(
            _bounded(low=0, whole=True, unset=True),
            "Prediction log retention: the service keeps at most this many logged requests (rows "
            "of prediction_requests), deleting the oldest (0 or empty = no limit).",
        ),
    )
    prediction_log_prune_interval_s: float = field(
        default=60.0,
        metadata=_about(
            _bounded(low=0, open_low=True),
            "Seconds between two retention passes of the prediction log writer.",
        ),
    )
    prediction_log_prune_batch_rows: int = field(
        default=1000,
        metadata=_about(
            _bounded(low=1, whole=True),
            "Rows deleted per transaction by a retention pass (small batches keep the log's "
            "inserts flowing).",
        ),
    )
    heartbeat_interval: float = field(
        default=30.0,
        metadata=_about(
            _bounded(low=0, open_low=True),
            "Seconds between the heartbeats an open run records (see stale_run_timeout).",
        ),
    )
    stale_run_timeout: float = field(
        default=300.0,
        metadata=_about(
            _bounded(low=0, open_low=True),
            "A RUNNING run owned by another machine whose last heartbeat is older than this many "
            "seconds is stale (shown so, then marked FAILED by the next writer).",
        ),
    )

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            try:
                converted = spec.metadata["convert"](value)
            except ValueError as exc:
                raise _Invalid(spec.name, value, str(exc)) from None
            object.__setattr__(self, spec.name, converted)

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


_SETTING_NAMES = frozenset(spec.name for spec in fields(Settings))


# Reading the sources ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Given:
    """A value as a source gave it: the name it was given under and the file it came from."""

    value: Any
    name: str  # MLFACTORY_HOME (environment, .env), home (mlfactory.toml, an argument)
    file: Path | None = None


def _variable_names(spec: Field[Any]) -> tuple[str, ...]:
    return (ENV_PREFIX + spec.name.upper(), *spec.metadata["aliases"])


def _from_variables(variables: Mapping[str, str | None], file: Path | None) -> dict[str, _Given]:
    """The settings among ``NAME=value`` pairs (the environment, ``.env``); names in any case,
    an exact ``MLFACTORY_…`` spelling first."""
    by_name: dict[str, tuple[str, str]] = {}
    for name, value in variables.items():
        if value is not None and (name.upper() not in by_name or name.isupper()):
            by_name[name.upper()] = (name, value)
    found = {}
    for spec in fields(Settings):
        for wanted in _variable_names(spec):
            if wanted in by_name:
                name, value = by_name[wanted]
                found[spec.name] = _Given(value, name, file)
                break
    return found


def _read_text(path: Path) -> str:
    """A configuration file's text; ConfigError naming it when it is not UTF-8 or unreadable."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        raise ConfigError(
            f"{path.resolve()}: not a text file: byte {bad.start} is not UTF-8 "
            "(configuration files are UTF-8)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path.resolve()}: cannot read the configuration file: {exc.strerror}"
        ) from None


def _from_dotenv(path: Path) -> dict[str, _Given]:
    """The settings in a ``.env`` file, read by python-dotenv (``${VAR}`` expanded). Lines it
    cannot parse are skipped and named in one warning, by number: their text may hold a
    password."""
    if not path.is_file():
        return {}
    import io
    import logging

    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    text = _read_text(path)
    skipped = [
        binding.original.line for binding in parse_stream(io.StringIO(text)) if binding.error
    ]
    if skipped:
        shown = ", ".join(map(str, skipped[:5])) + (" ..." if len(skipped) > 5 else "")
        logging.getLogger(__name__).warning(
            "%s: line(s) %s are not NAME=value and were skipped", path.resolve(), shown
        )
    dotenv_logger = logging.getLogger("dotenv.main")  # its warning names no file: said above
    was_disabled, dotenv_logger.disabled = dotenv_logger.disabled, True
    try:
        values = dotenv_values(stream=io.StringIO(text))
    finally:
        dotenv_logger.disabled = was_disabled
    return _from_variables(values, path.resolve())


def _from_toml(path: Path) -> dict[str, _Given]:
    """The settings in ``mlfactory.toml`` (keys without the prefix: ``home = "/srv/ml"``);
    a key that is no setting is named in a warning (a typo would otherwise pass unseen)."""
    if not path.is_file():
        return {}
    import tomllib

    try:
        document = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path.resolve()}: malformed TOML: {mask_urls_in_text(str(exc))}"
        ) from None
    known = _SETTING_NAMES
    found, unknown = {}, []
    for key, value in document.items():
        if key.lower() in known:
            found[key.lower()] = _Given(value, key, path.resolve())
        elif not isinstance(value, dict):  # a table may belong to another tool
            unknown.append(key)
    if unknown:
        import logging

        logging.getLogger(__name__).warning(
            "%s: %s %s no setting and ignored (settings: %s)",
            path.resolve(),
            ", ".join(map(repr, unknown)),
            "is" if len(unknown) == 1 else "are",
            ", ".join(sorted(known)),
        )
    return found


_SECRET_FIELDS = ("db_url", "api_key")


def _describe(error: _Invalid, given: _Given | None) -> str:
    """One line naming the variable (or key) as it was given, its file, and what is expected;
    a secret's value is never shown."""
    name = given.name if given else error.field
    where = f" in {given.file}" if given and given.file else ""
    if error.field in _SECRET_FIELDS:
        return f"invalid setting {name}{where}: {error.reason}"
    value = mask_urls_in_text(error.value) if isinstance(error.value, str) else error.value
    return f"invalid setting {name}={value!r}{where}: {error.reason}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from all sources, highest first: ``overrides``, the environment,
    ``.env``, ``mlfactory.toml``, the defaults. A bad value or file raises :class:`ConfigError`
    with one line naming it."""
    known = _SETTING_NAMES
    if unknown := sorted(set(overrides) - known):
        raise TypeError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    given = {
        **_from_toml(Path(TOML_FILE)),
        **_from_dotenv(Path(ENV_FILE)),
        **_from_variables(os.environ, None),
        **{name: _Given(value, name) for name, value in overrides.items()},
    }
    try:
        return Settings(**{name: item.value for name, item in given.items()})
    except _Invalid as exc:
        raise ConfigError(_describe(exc, given.get(exc.field))) from None


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
