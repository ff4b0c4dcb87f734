"""``predict --allow-unverified``: a version registered outside ``mlfactory promote`` (no
recorded SHA-256) is refused in one line unless the flag is given, which scores and warns."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from mlfactory.batch import batch_predict
from mlfactory.exceptions import MlfactoryError
from mlfactory.tracking import open_tracking


@pytest.fixture(scope="module")
def unverified(registered) -> str:
    """``credit`` version 1's files registered again, MLflow's own way, as ``credit_bare``."""
    client = open_tracking(registered.settings)
    legit = client.get_model_version("credit", "1")
    if not client.search_registered_models("name = 'credit_bare'"):
        client.create_registered_model("credit_bare")
        client.create_model_version("credit_bare", legit.source, legit.run_id)
    return "credit_bare/1"


def test_unverified_version_needs_the_flag(
    registered, run_predict, unverified: str, tmp_path: Path, caplog
) -> None:
    source = tmp_path / "in.parquet"
    registered.X.head(100).to_parquet(source, index=False)
    refused = run_predict(unverified, "--input", str(source), "--output", str(tmp_path / "a"))
    assert refused.exit_code == 2, refused.output
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "promote" in lines[0] and "SHA-256" in lines[0], refused.output
    assert not (tmp_path / "a").exists()
    with caplog.at_level(logging.WARNING):
        allowed = run_predict(
            unverified,
            "--input",
            str(source),
            "--output",
            str(tmp_path / "b"),
            "--allow-unverified",
        )
    assert allowed.exit_code == 0, allowed.output
    assert any("unverified" in r.getMessage() for r in caplog.records if r.levelno >= 30)
    features = registered.X.head(100).drop(columns=["id"])
    out = pd.read_parquet(tmp_path / "b")
    assert out["prediction"].tolist() == registered.model.predict(features).tolist()
    help_text = run_predict("--help").output
    assert "--allow-unverified" in help_text and "registered outside" in help_text


def test_batch_api_passes_allow_unverified(registered, unverified: str, tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    registered.X.head(50).to_parquet(source, index=False)
    with pytest.raises(MlfactoryError, match="SHA-256"):
        batch_predict(
            registered.settings, unverified, input_path=source, output_path=tmp_path / "a"
        )
    report = batch_predict(
        registered.settings,
        unverified,
        input_path=source,
        output_path=tmp_path / "b",
        allow_unverified=True,
    )
    assert report.rows == 50 and report.version == "1"
