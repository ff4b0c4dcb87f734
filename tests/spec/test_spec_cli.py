"""``mlfactory spec …`` through Typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mlfactory.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def flat(text: str) -> str:
    return " ".join(text.split())


def test_validate_ok_exits_zero():
    result = runner.invoke(app, ["spec", "validate", str(EXAMPLES / "credit_matrix.toml")])
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "valid:" in out and "4 pipeline(s)" in out


def test_validate_error_exits_two_with_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "b"\ndataset = "breast_cancer"\nmodel = "Forest"\n')
    result = runner.invoke(app, ["spec", "validate", str(path)])
    assert result.exit_code == 2
    out = flat(result.output)
    assert "error:" in out and "unknown model 'Forest'" in out and "RandomForest" in out
    assert "Traceback" not in result.output


def test_validate_applies_overrides():
    path = str(EXAMPLES / "credit_logreg.toml")
    ok = runner.invoke(app, ["spec", "validate", path, "--set", "cv.folds=3"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["spec", "validate", path, "--set", "cv.folds=1"])
    assert bad.exit_code == 2
    assert "cv.folds" in flat(bad.output)


def test_show_without_data_says_why_and_shows_the_cells():
    result = runner.invoke(app, ["spec", "show", str(EXAMPLES / "credit_matrix.toml")])
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "dataset not available" in out and "cs-training.csv" in out
    assert "power+RandomForest" in out and "RandomForestClassifier(random_state=42)" in out


def test_show_with_data_prints_split_cv_and_pipeline():
    result = runner.invoke(
        app,
        [
            "--log-level",
            "WARNING",
            "spec",
            "show",
            str(EXAMPLES / "breast_cancer_optuna.toml"),
            "-s",
            "model=KNN",
            "-s",
            "search.kind=grid",
        ],
    )
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "train/test split" in out and "stratified" in out and "455" in out
    assert "StratifiedKFold(n_splits=5, random_state=42, shuffle=True)" in out
    assert "('clf', KNeighborsClassifier())" in out
    assert "knn.json" in out


def test_models_lists_zoo_per_task():
    result = runner.invoke(app, ["spec", "models", "--task", "regression"])
    assert result.exit_code == 0, result.output
    assert "Lasso" in result.output and "ridge.json" in result.output
    assert "NaiveBayes" not in result.output
    every = runner.invoke(app, ["spec", "models"])
    assert "NaiveBayes" in every.output


def test_recipes_lists_the_registry():
    result = runner.invoke(app, ["spec", "recipes"])
    assert result.exit_code == 0
    for name in ("basic", "power", "robust_knn"):
        assert name in result.output
