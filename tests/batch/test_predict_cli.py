"""``mlfactory predict`` through Typer's CliRunner (the command in a one-command app)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def test_cli_scores_a_file(registered, run_predict, tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    registered.X.to_parquet(source, index=False)
    result = run_predict(
        "credit", "--input", str(source), "--output", str(tmp_path / "out"), "--key-columns", "id"
    )
    assert result.exit_code == 0, result.output
    assert "1,200" in result.output
    out = pd.read_parquet(tmp_path / "out").sort_values("id")
    features = registered.X.drop(columns=["id"])
    assert out["prediction"].tolist() == registered.model.predict(features).tolist()


def test_cli_missing_column_is_one_line_exit_1(registered, run_predict, tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    registered.X.drop(columns=["debt_ratio"]).to_parquet(source, index=False)
    result = run_predict("credit", "--input", str(source), "--output", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "'debt_ratio'" in result.output
    assert not (tmp_path / "out").exists()
