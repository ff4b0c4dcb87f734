"""``predict --overwrite`` replaces only an output that ``mlfactory predict`` wrote.

Every refusal names the path and why, exits 2, creates no staging folder and leaves every file
byte for byte as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from mlfactory.batch import batch_predict
from mlfactory.exceptions import DataError
from mlfactory.settings import load_settings

MARKER = "_MLFACTORY_PREDICT"  # what predict writes into its output folder


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (staging folders included): file bytes, or None for folders."""
    shot: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            shot[os.path.relpath(os.path.join(root, name), folder)] = None
        for name in files:
            path = os.path.join(root, name)
            shot[os.path.relpath(path, folder)] = Path(path).read_bytes()
    return shot


@pytest.fixture
def source(registered, tmp_path: Path) -> Path:
    path = tmp_path / "data" / "in.parquet"
    path.parent.mkdir()
    registered.X.head(200).to_parquet(path, index=False)
    return path


def _refused(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "refusing to overwrite" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], result.output


def test_overwrite_replaces_a_previous_predict_output(run_predict, source, tmp_path) -> None:
    out = tmp_path / "scores"
    first = run_predict(
        "credit", "--input", str(source), "--output", str(out), "--key-columns", "id"
    )
    assert first.exit_code == 0, first.output
    marker = json.loads((out / MARKER).read_text())
    assert marker["writer"] == "mlfactory predict"
    assert marker["rows"] == 200 and marker["version"] == "1"
    again = run_predict("credit", "--input", str(source), "--output", str(out))
    assert again.exit_code == 2 and "already exists" in again.output
    second = run_predict("credit", "--input", str(source), "--output", str(out), "--overwrite")
    assert second.exit_code == 0, second.output
    assert "id" not in pd.read_parquet(out).columns  # the new output, without the key column
    assert json.loads((out / MARKER).read_text())["scored_at"] != marker["scored_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "scores"]  # no .old, no .tmp
    # through a symlink: the real folder is checked and replaced, the link still points at it
    (tmp_path / "latest").symlink_to(out, target_is_directory=True)
    third = run_predict(
        "credit", "--input", str(source), "--output", str(tmp_path / "latest"), "--overwrite"
    )
    assert third.exit_code == 0, third.output
    assert (tmp_path / "latest").is_symlink() and (out / MARKER).is_file()
    assert json.loads((out / MARKER).read_text())["scored_at"] != marker["scored_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "latest", "scores"]


def test_overwrite_refuses_what_predict_did_not_write(run_predict, source, tmp_path) -> None:
    cases = tmp_path / "cases"
    (cases / "file.parquet").parent.mkdir()
    (cases / "file.parquet").write_bytes(b"a regular file, not a folder")
    (cases / "empty").mkdir()
    (cases / "foreign").mkdir()
    (cases / "foreign" / "notes.txt").write_text("keep me")
    (cases / "foreign" / "part-00000.parquet").write_bytes(b"looks like a part")
    # a real predict output to which someone added a folder and a file
    assert (
        run_predict("credit", "--input", str(source), "--output", str(cases / "grown")).exit_code
        == 0
    )
    (cases / "grown" / "extra").mkdir()
    (cases / "grown" / "extra" / "model.pkl").write_bytes(b"precious")
    (cases / "grown" / "report.csv").write_text("a,b\n1,2\n")
    # a forged marker does not make other content removable, nor does a symlinked part file
    (cases / "forged").mkdir()
    (cases / "forged" / MARKER).write_text(json.dumps({"writer": "mlfactory predict"}))
    (cases / "forged" / "part-00001.parquet").symlink_to(cases / "file.parquet")
    (cases / "link").symlink_to(cases / "foreign", target_is_directory=True)
    before = _snapshot(tmp_path)
    expected = {
        "file.parquet": "it is a file, not a folder written by mlfactory predict",
        "empty": f"no {MARKER} marker",
        "foreign": f"no {MARKER} marker",
        "grown": "it holds extra/, report.csv besides the part files",
        "forged": "it holds part-00001.parquet besides",
        "link": f"resolves to {(cases / 'foreign').resolve()}",
    }
    for name, why in expected.items():
        target = cases / name
        result = run_predict(
            "credit", "--input", str(source), "--output", str(target), "--overwrite"
        )
        _refused(result, str(target), why)
    assert _snapshot(tmp_path) == before  # byte for byte, and no staging folder anywhere


def test_overwrite_never_removes_a_folder_that_matters(
    registered, run_predict, source, tmp_path, monkeypatch
) -> None:
    """MLFACTORY_HOME, the working directory, the user's home, /, the input and any folder
    containing one of them are refused even when they look like a predict output."""
    user_home = tmp_path / "user"
    (user_home / "documents").mkdir(parents=True)
    (user_home / "documents" / "thesis.txt").write_text("years of work")
    monkeypatch.setenv("HOME", str(user_home))
    work = user_home / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    ml_home = tmp_path / "mlhome"
    (ml_home / "data").mkdir(parents=True)
    (ml_home / "data" / "train.parquet").write_bytes(b"training data")
    settings = load_settings(
        home=ml_home,
        db_url=registered.settings.database_url,
        artifact_root=registered.settings.artifacts_dir,
    )
    # each looks like predict's output (marker + parts) so only the folder rule can refuse it
    for folder in (ml_home, work, user_home, source.parent):
        (folder / MARKER).write_text(json.dumps({"writer": "mlfactory predict"}))
    before, root_before = _snapshot(tmp_path), sorted(os.listdir("/"))
    expected = {
        str(ml_home): "it is MLFACTORY_HOME",
        str(tmp_path): "it contains",
        ".": "it is the working directory",
        "..": "it is your home folder",
        str(work): "it is the working directory",
        str(user_home): "it is your home folder",
        "/": "it is the root folder",
        str(source.parent): "it contains the input",
        str(source): "it is the input",
    }
    for output, why in expected.items():
        result = run_predict(
            "credit", "--input", str(source), "--output", output, "--overwrite", settings=settings
        )
        _refused(result, output, why)
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir("/")) == root_before


def test_library_refuses_before_loading_or_creating_anything(registered, tmp_path) -> None:
    """From Python too: the refusal is a DataError with exit code 2, raised before any file."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    before = _snapshot(tmp_path)
    with pytest.raises(
        DataError, match=r"refusing to overwrite output .*out: .*no _MLFACTORY_PREDICT marker"
    ) as info:
        batch_predict(
            registered.settings,
            "no-such-model",  # never looked up: the output is refused first
            input_path=tmp_path / "missing.parquet",
            output_path=tmp_path / "out",
            overwrite=True,
        )
    assert info.value.exit_code == 2
    assert _snapshot(tmp_path) == before
