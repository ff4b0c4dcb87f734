"""``mlfactory data synth``: writes the raw files where the loaders look, atomically."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import load_dataset

runner = CliRunner()


def test_synth_credit_then_load_just_works(isolated_home: Path) -> None:
    result = runner.invoke(app, ["data", "synth", "credit", "--rows", "500", "--seed", "1"])
    assert result.exit_code == 0, result.output
    path = isolated_home / "data" / "raw" / "credit" / "cs-training.csv"
    assert path.is_file()
    assert "cs-training.csv" in result.output and "500 rows" in result.output
    data = load_dataset("credit")
    assert len(data.X) == 500
    assert [p.name for p in path.parent.iterdir()] == ["cs-training.csv"]  # no temp files left


def test_synth_adult_and_fires_to_custom_out(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", "adult", "--rows", "100", "--out", "adult_dir"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "adult_dir").iterdir()) == [
        "adult.data",
        "adult.test",
    ]
    assert len(load_dataset("adult", path=tmp_path / "adult_dir", include_test=True).X) == 150
    out = tmp_path / "ff.csv"
    result = runner.invoke(app, ["data", "synth", "fires", "--rows", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(load_dataset("fires", path=out).X) == 50


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        runner.invoke(app, ["data", "synth", "credit", "--rows", "200", "--out", name])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_help_lists_choices_and_bad_input_fails_cleanly() -> None:
    result = runner.invoke(app, ["data", "synth", "--help"])
    assert result.exit_code == 0
    assert "credit" in result.output and "adult" in result.output and "fires" in result.output
    result = runner.invoke(app, ["data", "synth", "stocks", "--rows", "10"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["data", "synth", "credit", "--rows", "0"])
    assert result.exit_code == 2


def test_load_error_is_one_line_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "adult_file").write_text("x")
    result = runner.invoke(app, ["data", "synth", "adult", "--rows", "5", "--out", "adult_file"])
    assert result.exit_code == 2
    assert "folder" in result.output and "Traceback" not in result.output
