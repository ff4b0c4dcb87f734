"""``mlfactory train`` on PostgreSQL prints no driver noise (each metric is logged once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = """
name = "quiet"
dataset = "breast_cancer"
preprocessing = "basic"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc", "accuracy"]
[search]
kind = "grid"
param_grid = {clf__C = [0.1, 1.0]}
"""


@pytest.mark.slow
def test_train_on_postgres_prints_no_aborted_pipeline(tmp_path: Path, postgres_url: str) -> None:
    spec = tmp_path / "quiet.toml"
    spec.write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env.update(MLFACTORY_HOME=str(tmp_path / "home"), MLFACTORY_DB_URL=postgres_url)
    for matrix in ([], ["--set", 'preprocessing=["basic", "power"]']):
        done = subprocess.run(
            [sys.executable, "-m", "mlfactory", "train", str(spec), *matrix],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "pipeline aborted" not in done.stderr, done.stderr
        assert "error ignored" not in done.stderr, done.stderr
        assert "held-out test" in done.stdout
