"""Object-store paths and credentials: one fsspec URL -> a filesystem and the options to reach it.

A location is a local folder or ``s3://bucket/prefix`` (any S3-compatible store: MinIO, Ceph,
moto). Only the *endpoint* travels in storage options (``MLFACTORY_S3_ENDPOINT_URL``): the
credentials are never passed around. Every process that opens a location (this one, a Dask worker
on another machine, the MLflow client) finds them the standard AWS way: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``), ``AWS_PROFILE`` or an instance role. So task
graphs, logs, params and reports hold URLs and an endpoint, never a key.

Writes are atomic: :func:`write_bytes` writes a local file through a hidden temp file renamed into
place and an object with one PUT (S3 shows an object whole or not at all). Failures of the store
become one-line errors that name the URL and what was expected (:func:`storage_error`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlfactory.exceptions import ConfigError, DataError, MlfactoryError, ServiceUnavailable
from mlfactory.settings import Settings, mask_urls_in_text

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "CREDENTIAL_VARIABLES",
    "Location",
    "ReportFolder",
    "StoreCheck",
    "apply_storage_environment",
    "check_store",
    "delete",
    "exists",
    "is_remote",
    "join",
    "location_from",
    "open_location",
    "read_bytes",
    "report_folder",
    "storage_error",
    "storage_options",
    "translated",
    "write_bytes",
]

# Where credentials come from (read by botocore in each process; mlfactory never copies them).
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# A wrong endpoint fails fast: few retries, short connect timeout.
_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}}
TEMP_SUFFIX = ".tmp"


def is_remote(url: str | Path) -> bool:
    """True for an object-store URL (``s3://…``), False for a local path or ``file://``."""
    text = str(url)
    return "://" in text and not text.startswith("file://")


def join(url: str | Path, *parts: str) -> str:
    """``url`` + ``/part/part`` for a URL or a local path (as text)."""
    text = str(url).rstrip("/")
    tail = "/".join(p.strip("/") for p in parts if p)
    return f"{text}/{tail}" if tail else text


def storage_options(url: str | Path, settings: Settings | None = None) -> dict[str, Any]:
    """The fsspec options of ``url``: for S3 the endpoint and timeouts, **never** credentials."""
    if not is_remote(url):
        return {}
    options: dict[str, Any] = {
        "config_kwargs": dict(_CONFIG),
        "use_listings_cache": False,  # other machines write the same store
    }
    if settings is None:
        from mlfactory.settings import get_settings

        try:
            settings = get_settings()
        except MlfactoryError:
            settings = None
    endpoint = settings.s3_endpoint_url if settings is not None else None
    endpoint = endpoint or os.environ.get("MLFACTORY_S3_ENDPOINT_URL") or None
    if endpoint:
        options["endpoint_url"] = endpoint
    return options


def apply_storage_environment(settings: Settings) -> None:
    """Point MLflow's S3 client (boto3) at ``MLFACTORY_S3_ENDPOINT_URL`` in this process.

    MLflow reads ``MLFLOW_S3_ENDPOINT_URL`` (client and ``mlflow ui``/server alike); a value the
    user set beforehand wins. Credentials are left where they are: the environment or a profile.
    """
    if settings.s3_endpoint_url:
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", settings.s3_endpoint_url)


@dataclass(frozen=True)
class Location:
    """A folder or object prefix: ``url`` (as shown), ``fs`` and ``path`` (inside ``fs``)."""

    url: str
    path: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def fs(self) -> AbstractFileSystem:
        return _filesystem(self.url, self.options)

    @property
    def remote(self) -> bool:
        return is_remote(self.url)

    @property
    def local_path(self) -> Path:
        if self.remote:
            raise ValueError(f"{self.shown} is not a local folder")
        return Path(self.path)

    @property
    def shown(self) -> str:
        return mask_urls_in_text(self.url)

    def child(self, *parts: str) -> Location:
        return Location(join(self.url, *parts), join(self.path, *parts), self.options)

    def __str__(self) -> str:
        return self.shown


def _filesystem(url: str, options: dict[str, Any]) -> AbstractFileSystem:
    if not is_remote(url):
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()
    import fsspec

    protocol = url.split("://", 1)[0].lower()
    try:
        return fsspec.filesystem("s3" if protocol == "s3a" else protocol, **options)
    except ImportError as exc:
        raise ConfigError(
            f"cannot open {mask_urls_in_text(url)}: the s3fs package is missing ({exc}); "
            "install it with pip install 'mlfactory[s3]'"
        ) from None


def open_location(url: str | Path | Location, settings: Settings | None = None) -> Location:
    """The location of a local folder, ``file://`` URL or ``s3://bucket/prefix``."""
    if isinstance(url, Location):
        return url
    text = str(url)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    if not is_remote(text):
        path = str(Path(text).expanduser().resolve())
        return Location(path, path, {})
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("s3", "s3a") or not rest.strip("/"):
        raise ConfigError(
            f"unsupported store {mask_urls_in_text(text)!r}; expected a local folder, "
            "file:///path or s3://bucket/prefix"
        )
    rest = rest.strip("/")
    return Location(f"s3://{rest}", rest, storage_options(text, settings))


def location_from(url: str, options: dict[str, Any]) -> Location:
    """Rebuild a location on a Dask worker from its URL and the (credential-free) options."""
    if not is_remote(url):
        return open_location(url)
    return Location(url, url.split("://", 1)[1].strip("/"), dict(options))


# Errors ------------------------------------------------------------------------------------


def _code_of(exc: BaseException) -> str:
    """The S3 error code behind an exception (botocore ClientError, or s3fs's translation)."""
    for error in (exc, exc.__cause__, exc.__context__):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
    return ""


def storage_error(exc: BaseException, location: Location | str, doing: str) -> MlfactoryError:
    """One-line error for a failure of the store at ``location`` while ``doing`` something.

    Unreachable endpoint or refused credentials: :class:`ServiceUnavailable` (exit 3); a bucket
    or object that does not exist: :class:`ConfigError` / :class:`DataError` (exit 2 / 1).
    """
    shown = location.shown if isinstance(location, Location) else mask_urls_in_text(location)
    if isinstance(exc, MlfactoryError):
        return exc
    name = type(exc).__name__
    text = mask_urls_in_text(str(exc).splitlines()[0] if str(exc) else name)
    code = _code_of(exc)
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError") or (
        isinstance(exc, ConnectionError | TimeoutError) or "Could not connect" in text
    ):
        error: MlfactoryError = ServiceUnavailable(
            f"cannot reach the object store for {shown} while {doing} ({text}); "
            "expected an S3 endpoint answering at MLFACTORY_S3_ENDPOINT_URL"
        )
    elif code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403") or (
        isinstance(exc, PermissionError) or name == "NoCredentialsError"
    ):
        error = ServiceUnavailable(
            f"the object store refused access to {shown} while {doing} ({text}); expected valid "
            "credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    elif code == "NoSuchBucket" or "bucket does not exist" in text.lower():
        error = ConfigError(
            f"the bucket of {shown} does not exist ({text}); create it or fix MLFACTORY_STORE_URL"
        )
    elif isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "404"):
        error = DataError(f"{shown} not found while {doing}")
    else:
        error = DataError(f"object store error for {shown} while {doing}: {name}: {text}")
    return error


@contextlib.contextmanager
def translated(location: Location | str, doing: str):
    """Turn store failures inside the block into one-line mlfactory errors."""
    try:
        yield
    except MlfactoryError:
        raise
    except Exception as exc:
        if isinstance(location, Location) and not location.remote and not _is_remote_exc(exc):
            raise
        raise storage_error(exc, location, doing) from exc


def _is_remote_exc(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("botocore", "aiobotocore", "s3fs", "aiohttp"))


# Reading and writing -----------------------------------------------------------------------


def _create(path: Path):
    """A new file open for writing; its folder is made only when missing (a mkdir on every
    write cost ~0.3 ms each, 1,000 in a full featurize)."""
    try:
        return open(path, "wb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")


def write_bytes(location: Location, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` whole at ``location``: temp file + rename locally, one PUT on S3."""
    if location.remote:
        with translated(location, "writing"):
            location.fs.pipe_file(location.path, data)
        return
    path = Path(location.path)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    try:
        with _create(temp) as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def read_bytes(location: Location) -> bytes:
    """The whole object or file; :class:`DataError` naming it when it is missing."""
    try:
        with translated(location, "reading"):
            if location.remote:  # one GET: no HEAD for the size first (objects are small)
                return location.fs.cat_file(location.path, max_concurrency=1)
            return Path(location.path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{location.shown} not found") from None


def exists(location: Location) -> bool:
    with translated(location, "checking"):
        return bool(location.fs.exists(location.path))


def delete(location: Location) -> None:
    with contextlib.suppress(FileNotFoundError), translated(location, "deleting"):
        location.fs.rm_file(location.path)


# Reports: written into a folder, published to the store -------------------------------------


@dataclass
class ReportFolder:
    """Where a report is written (``local``) and where it ends up (``destination``: the same
    folder, or an object-store prefix the files are uploaded to when the block ends)."""

    local: Path
    destination: str
    remote: bool

    def shown(self, path: Path) -> str | Path:
        """What to show (and return) for a file written into ``local``."""
        if not self.remote:
            return path
        return mask_urls_in_text(join(self.destination, path.relative_to(self.local).as_posix()))


@contextlib.contextmanager
def report_folder(settings: Settings, out: Path | str | None, *default: str):
    """A folder to write a report into, published where it belongs when the block ends.

    ``out`` (a folder or ``s3://…``) wins; by default ``STORE/reports/<default…>`` when the
    store is an object store, else ``HOME/reports/<default…>``. An object-store destination is
    written into a temporary folder first, then each file is uploaded whole (one PUT each).
    """
    import shutil
    import tempfile

    if out is not None:
        target = str(out)
    elif settings.store_is_remote:
        target = join(settings.reports_root, *default)
    else:
        target = str(settings.reports_dir.joinpath(*default))
    if not is_remote(target):
        folder = Path(target.removeprefix("file://"))
        yield ReportFolder(folder, str(folder), False)
        return
    location = open_location(target, settings)
    temporary = Path(tempfile.mkdtemp(prefix="mlfactory-report-"))
    try:
        report = ReportFolder(temporary, location.url, True)
        yield report
        for path in sorted(temporary.rglob("*")):
            if path.is_file():
                write_bytes(
                    location.child(path.relative_to(temporary).as_posix()), path.read_bytes()
                )
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


# The health check of `mlfactory info` ------------------------------------------------------


@dataclass(frozen=True)
class StoreCheck:
    """Whether the store answered a write, a read and a delete of a probe object."""

    url: str
    ok: bool
    message: str
    error: MlfactoryError | None = None


def check_store(url: str | Path, settings: Settings | None = None) -> StoreCheck:
    """Write, read back and delete a small probe object under ``url``; say why not."""
    try:
        location = open_location(url, settings)
    except MlfactoryError as exc:
        return StoreCheck(mask_urls_in_text(str(url)), False, str(exc), exc)
    probe = location.child(f"_probe-{uuid.uuid4().hex}")
    payload = b"mlfactory store check"
    try:
        write_bytes(probe, payload)
        back = read_bytes(probe)
        delete(probe)
    except MlfactoryError as exc:
        return StoreCheck(location.shown, False, str(exc), exc)
    except OSError as exc:
        error = DataError(f"cannot write to {location.shown}: {exc}")
        return StoreCheck(location.shown, False, str(error), error)
    if back != payload:
        error = DataError(f"{location.shown} returned other bytes than were written")
        return StoreCheck(location.shown, False, str(error), error)
    return StoreCheck(location.shown, True, "read and write ok")
