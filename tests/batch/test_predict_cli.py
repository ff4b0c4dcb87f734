"""``mlfactory predict`` through Typer's CliRunner (the command in a one-command app)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


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


def _flat(output: str) -> str:
    """The CLI's output as one line of words: a table cell wrapped over lines reads whole."""
    return " ".join(output.replace("│", " ").split())


def _proba(out: pd.DataFrame) -> np.ndarray:
    return out.sort_values("id")[[c for c in out.columns if c.startswith("proba_")]].to_numpy()


@pytest.fixture(scope="module")
def without_graph(registered) -> str:
    """The registered run promoted again with no ONNX graph, as 'credit-no-onnx'."""
    from mlfactory.registry import load_model, promote

    run_id = load_model(registered.settings, "credit").info.run_id
    promote(registered.settings, "credit-no-onnx", run_id=run_id, compile_onnx=False)
    return "credit-no-onnx"


def test_cli_names_the_path_and_no_onnx_forces_scikit_learn(
    registered, run_predict, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    registered.X.to_parquet(source, index=False)
    outs, texts = {}, {}
    for name, extra in (("onnx", []), ("sklearn", ["--no-onnx"])):
        out = tmp_path / name
        result = run_predict("credit", "--input", str(source), "--output", str(out),
                             "--key-columns", "id", *extra)  # fmt: skip
        assert result.exit_code == 0, result.output
        outs[name], texts[name] = pd.read_parquet(out), _flat(result.output)
    assert "inference compiled (ONNX) why verified ONNX graph" in texts["onnx"], texts["onnx"]
    assert "inference scikit-learn why ONNX disabled (--no-onnx)" in texts["sklearn"]
    assert "compiled (ONNX)" not in texts["sklearn"]
    compiled, plain = (outs[k].sort_values("id") for k in ("onnx", "sklearn"))
    assert compiled["prediction"].tolist() == plain["prediction"].tolist()
    np.testing.assert_allclose(_proba(compiled), _proba(plain), rtol=0, atol=1e-6)
    features = registered.X.drop(columns=["id"])
    np.testing.assert_allclose(
        _proba(plain), registered.model.predict_proba(features), rtol=0, atol=1e-12
    )


def test_cli_without_a_graph_scores_with_scikit_learn_saying_why(
    registered, run_predict, without_graph, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    registered.X.to_parquet(source, index=False)
    out = tmp_path / "out"
    result = run_predict(without_graph, "--input", str(source), "--output", str(out),
                         "--key-columns", "id")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "inference scikit-learn why no ONNX graph recorded for this version" in text, text
    features = registered.X.drop(columns=["id"])
    expected = registered.model.predict_proba(features)
    np.testing.assert_allclose(_proba(pd.read_parquet(out)), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", ["empty", "folder", "duplicate", "latin1"])
def test_cli_a_bad_input_file_is_one_line_naming_it(
    registered, run_predict, tmp_path: Path, bad: str
) -> None:
    """An empty CSV, a folder of no CSV, a header naming a column twice, a file that is not
    UTF-8: one line naming the file and what was expected (dask's two-line wrapping gone)."""
    source = tmp_path / "in.csv"
    header = ",".join(registered.X.columns)
    if bad == "empty":
        source.write_text("")
    elif bad == "folder":
        source.mkdir()
    elif bad == "duplicate":
        source.write_text(f"{header},debt_ratio\n")
    else:
        source.write_bytes(f"{header}\n".encode() + b"caf\xe9\n")
    result = run_predict("credit", "--input", str(source), "--output", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    expected = {
        "empty": "is empty; expected a header row",
        "folder": "a folder with no .csv files",
        "duplicate": "'debt_ratio' appear more than once",
        "latin1": "not UTF-8 text",
    }[bad]
    assert str(source) in lines[0] and expected in lines[0], lines
    assert "Original Message" not in result.output
    assert not (tmp_path / "out").exists()
