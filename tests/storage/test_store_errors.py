"""A wrong key, endpoint, bucket or store URL: one line naming the URL, the documented exit code."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from mlfactory.cli import app

runner = CliRunner()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fails(args: list[str], code: int, *needles: str) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    output = result.output
    assert result.exit_code == code, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_a_wrong_secret_key_is_refused_in_one_line(bucket, s3_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFACTORY_STORE_URL", f"s3://{bucket}/store")
    wrong = "wrong-" + s3_env.secret[::-1]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    line = _fails(["data", "ingest", "--end", "2020-01-31"], 3, "refused access", bucket)
    assert wrong not in line and s3_env.secret not in line
    result = runner.invoke(app, ["info"], env={"COLUMNS": "400"})
    assert result.exit_code == 3 and "refused access" in result.output, result.output
    assert wrong not in result.output


def test_a_wrong_endpoint_is_an_outage_in_one_line(bucket, s3_env, monkeypatch):
    monkeypatch.setenv("MLFACTORY_STORE_URL", f"s3://{bucket}/store")
    monkeypatch.setenv("MLFACTORY_S3_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    _fails(["data", "status"], 3, "cannot reach the object store", bucket)


def test_a_missing_bucket_is_a_setting_to_fix(s3_env, monkeypatch):
    monkeypatch.setenv("MLFACTORY_STORE_URL", "s3://no-such-bucket-mlf/store")
    _fails(["data", "ingest", "--end", "2020-01-31"], 2, "no-such-bucket-mlf", "does not exist")
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 2 and '"ok": false' in result.output, result.output


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("s3://AKIAXX:topsecret@bucket/p", "never from the URL"),
        ("ftp://host/p", "expected a local folder"),
        ("s3:///p", "expected s3://bucket/prefix"),
    ],
)
def test_a_malformed_store_url_is_refused_masked(url, needle, monkeypatch):
    monkeypatch.setenv("MLFACTORY_STORE_URL", url)
    line = _fails(["data", "status"], 2, "MLFACTORY_STORE_URL", needle)
    assert "topsecret" not in line
