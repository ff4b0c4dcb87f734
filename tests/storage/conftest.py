"""Fixtures of the object-store tests: one moto S3 server per session, a fresh bucket per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _s3 import S3Server, start_server

from mlfactory.settings import get_settings

_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server, s3 = start_server()
    try:
        yield s3
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """This process speaks to the test server with the standard AWS variables."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    _forget_filesystems()
    get_settings.cache_clear()
    yield s3_server
    _forget_filesystems()
    os.environ.pop("MLFLOW_S3_ENDPOINT_URL", None)


@pytest.fixture
def bucket(s3_env: S3Server) -> str:
    return s3_env.create_bucket()


def _forget_filesystems() -> None:
    """fsspec caches filesystem instances (with the credentials they found): none survive."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
