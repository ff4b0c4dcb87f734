"""Readers learn what MLflow expects of a store from a snapshot, without importing MLflow (#21).

The snapshot is used only when it was taken of the installed MLflow (same version and the same
migration files); otherwise MLflow itself answers, as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlfactory.tracking import _readonly
from mlfactory.tracking._readonly import (
    MLFLOW_SCHEMA_SNAPSHOT,
    _snapshot_expectations,
    mlflow_expectations,
    mlflow_fingerprint,
    write_mlflow_snapshot,
)


def test_the_shipped_snapshot_is_the_installed_mlflow_s_own_answer() -> None:
    found = _snapshot_expectations(MLFLOW_SCHEMA_SNAPSHOT)
    assert found is not None, (
        "resources/mlflow_schema.json was taken of another MLflow: "
        "run `python -m mlfactory.tracking._readonly` to record the installed one"
    )
    tables, head, known = found
    assert (tables, head, known) == mlflow_expectations()
    assert {"experiments", "runs", "registered_models", "model_versions"} <= tables
    assert head in known


def test_a_snapshot_of_another_mlflow_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    write_mlflow_snapshot(path)
    assert _snapshot_expectations(path) is not None
    snapshot = json.loads(path.read_text())
    for key, wrong in (("mlflow", "0.0.1"), ("migrations", snapshot["migrations"][:-1])):
        path.write_text(json.dumps({**snapshot, key: wrong}))
        assert _snapshot_expectations(path) is None, key
    path.write_text("{not json")
    assert _snapshot_expectations(path) is None


def test_reading_the_state_imports_no_mlflow() -> None:
    code = (
        "import sys; from mlfactory.tracking import tracking_state; "
        "from mlfactory.tracking._readonly import _mlflow_expectations; "
        "_mlflow_expectations(); print(sorted(m for m in sys.modules if m.startswith('mlflow')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_fingerprint_names_the_installed_version() -> None:
    from importlib.metadata import version

    found = mlflow_fingerprint()
    assert found is not None and found["mlflow"] == version("mlflow")
    assert any(name.endswith(".py") for name in found["migrations"])
    assert _readonly._mlflow_expectations()[1] == mlflow_expectations()[1]
