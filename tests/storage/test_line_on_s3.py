"""The factory line with its store, reports and artifacts on an object store (moto's S3).

The stocks line runs end to end through the CLI; a rerun finds every stage up to date from the
feature store's manifest alone (no listing of the bucket); one more ticker reruns from the data;
the champion's drift baseline lands in the bucket, and the local home keeps no data.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from mlfactory.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FAST = (
    "--set", "data.tickers=3", "--set", "data.end=2023-08-31", "--set", "promote.onnx=false",
    "--set", 'train.overrides=["search.kind=none", "cv.folds=2", "preprocessing=basic"]',
)  # fmt: skip
LINE_TAIL = "\n[monitor]\nbaseline = true\n"


def _statuses(output: str) -> dict[str, str]:
    return dict(re.findall(r"│ (\w+)\s+│ (ran|up to date|would run)\s", output))


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_stocks_line_on_an_object_store(tmp_path, bucket, s3_env, monkeypatch, isolated_home):
    monkeypatch.setenv("MLFACTORY_STORE_URL", f"s3://{bucket}/store")
    monkeypatch.setenv("MLFACTORY_ARTIFACT_ROOT", f"s3://{bucket}/artifacts")
    for name in ("stocks_line.toml", "stocks.toml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    line = tmp_path / "stocks_line.toml"
    line.write_text(line.read_text() + LINE_TAIL)

    first = _statuses(_run(str(line), *FAST))
    assert set(first.values()) == {"ran"} and "monitor" in first, first
    again = _statuses(_run(str(line), *FAST))
    assert set(again.values()) == {"up to date"}, again

    wider = list(FAST)
    wider[1] = "data.tickers=4"
    more = _statuses(_run(str(line), *wider))
    assert more["data"] == "ran" and more["dataset"] == "ran", more

    objects = s3_env.objects(bucket)
    names = list(objects)
    assert any("/store/silver/features/" in n and "ticker=" in n for n in names)
    assert any("/store/reports/line/stocks/baseline/" in n and n.endswith(".html") for n in names)
    assert any(n.startswith(f"{bucket}/artifacts/") for n in names)
    local_data = [p for p in isolated_home.rglob("*.parquet")]
    assert local_data == []  # the data store lives in the bucket only
    secret = s3_env.secret.encode()
    assert not any(secret in body for body in objects.values())
