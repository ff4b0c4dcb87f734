"""Trust / secrets: one place masks URL secrets, in the userinfo and in the query string."""

from __future__ import annotations

import logging
import tomllib

import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.logs import configure_logging, get_logger
from mlfactory.settings import mask_secrets, mask_url, mask_urls_in_text
from mlfactory.spec import masked_spec_text

SECRET = "S3cretPassw0rd"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:S3cretPassw0rd@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=S3cretPassw0rd", "postgresql://u@h/db?password=***"),
        ("postgresql://u@h/db?PassWord=S3cretPassw0rd&sslmode=require", "PassWord=***"),
        ("mssql://h/db?user=u&PWD=S3cretPassw0rd", "PWD=***"),
        ("https://h/data.csv?sv=1&sig=S3cretPassw0rd", "sig=***"),
        ("https://h/data.csv?access_token=S3cretPassw0rd", "access_token=***"),
        ("https://h/data.csv?api_key=S3cretPassw0rd&x=1", "api_key=***"),
        ("https://h/data.csv?Secret=S3cretPassw0rd", "Secret=***"),
        ("s3://b/k.csv?X-Amz-Credential=S3cretPassw0rd&X-Amz-Signature=S3cretPassw0rd", "***"),
        ("postgresql://u:S3cretPassw0rd@h/db?sslpassword=S3cretPassw0rd", "sslpassword=***"),
        ("jdbc:sqlserver://h;user=u;password=S3cretPassw0rd;db=x", "password=***"),
    ],
)
def test_query_string_secrets_are_masked(url, expected):
    for masked in (mask_url(url), mask_urls_in_text(f"cannot reach {url} (timeout)")):
        assert SECRET not in masked
        assert expected in masked


def test_harmless_query_values_and_prose_are_kept():
    url = "postgresql://u@h:5432/db?sslmode=require&application_name=train"
    assert mask_url(url) == url
    prose = "override 'x': expected key=value, e.g. model=RandomForest, cv.folds=10"
    assert mask_urls_in_text(prose) == prose
    assert mask_urls_in_text("sqlite:///home/me/a.db") == "sqlite:///home/me/a.db"
    # libpq's key=value form outside a URL: the password is masked, the rest kept
    assert mask_urls_in_text("host=h password=S3cretPassw0rd dbname=x") == (
        "host=h password=*** dbname=x"
    )


def test_mask_secrets_walks_any_structure():
    spec = {
        "dataset": {"sql": "select 1", "url": f"postgresql://u:{SECRET}@h/db"},
        "future": [{"source": f"https://h/x.csv?token={SECRET}"}, 3, None],
        "odd": (f"postgresql://u:pa ss{SECRET}@h/db",),  # a password the text pattern misses
        "password": SECRET,
    }
    masked = mask_secrets(spec)
    assert SECRET not in repr(masked)
    assert masked["dataset"] == {"sql": "select 1", "url": "postgresql://u:***@h/db"}
    assert masked["future"][1:] == [3, None]
    assert SECRET in repr(spec)  # a copy: the original is untouched


def test_the_stored_spec_is_masked_in_place_or_rewritten():
    text = f'# mine\nname = "x"\n[dataset]\nurl = "postgresql://u:{SECRET}@h/db"\ntarget = "y"\n'
    stored = masked_spec_text(text)
    assert SECRET not in stored and stored.startswith("# mine")  # comments kept
    odd = f'name = "x"\ndataset = {{url = "postgresql://u:p w{SECRET}@h/db", target = "y"}}\n'
    stored = masked_spec_text(odd)
    assert SECRET not in stored
    assert tomllib.loads(stored)["dataset"]["target"] == "y"
    assert masked_spec_text('name = "x"\n') == 'name = "x"\n'


def test_logs_mask_query_passwords(tmp_path):
    log_file = configure_logging("DEBUG", tmp_path)
    try:
        get_logger("trust").warning("connecting to %s", f"postgresql://u@h/db?password={SECRET}")
        for handler in logging.getLogger("mlfactory").handlers:
            handler.flush()
    finally:
        configure_logging("WARNING", None)
    written = log_file.read_text()
    assert "password=***" in written and SECRET not in written


def test_info_and_setting_errors_mask_query_passwords(monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("MLFACTORY_DB_URL", f"mysql://u@h/db?password={SECRET}")
    refused = runner.invoke(app, ["info"], env={"COLUMNS": "400"})
    assert refused.exit_code == 2 and "unsupported database" in refused.output
    assert SECRET not in refused.output and "password=***" in refused.output
    monkeypatch.setenv(
        "MLFACTORY_DB_URL", f"postgresql+psycopg://u@127.0.0.1:1/db?password={SECRET}"
    )
    info = runner.invoke(app, ["info"], env={"COLUMNS": "400"})
    assert info.exit_code == 3 and "unreachable" in info.output  # 3: the store is down
    assert SECRET not in info.output and "password=***" in info.output


def test_info_masks_every_url_setting():
    from mlfactory.settings import load_settings

    shown = load_settings(
        db_url=f"postgresql+psycopg://u@h/db?password={SECRET}",
        dask_scheduler_address=f"tls://scheduler:8786?token={SECRET}",
    ).public_dict()
    assert SECRET not in repr(shown)
    assert shown["dask_scheduler_address"] == "tls://scheduler:8786?token=***"
