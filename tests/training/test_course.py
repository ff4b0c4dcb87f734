"""The course, reproduced: its recipes, split, folds and grid, against scikit-learn by hand.

The course's pipeline is built here from scikit-learn alone (median impute -> StandardScaler, and
-> PowerTransformer for the three skewed columns; LogisticRegression over its grid of C;
``train_test_split(X, y, test_size=0.2, random_state=42)``; ``KFold(5)``), on the same data, and
every fold score of ``mlfactory train examples/course_credit.toml`` must agree with it to 1e-9.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer, StandardScaler
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import load_dataset, write_synthetic
from mlfactory.datasets._base import ColumnRoles
from mlfactory.models import load_grid
from mlfactory.preprocessing import build_recipe
from mlfactory.settings import get_settings
from mlfactory.spec import load_spec
from mlfactory.tracking import open_tracking

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "course_credit.toml"
SKEWED = ["revolving_unsecured_line_utilization", "debt_ratio", "monthly_income"]
SCORING = ["neg_log_loss", "roc_auc", "f1", "accuracy", "precision", "recall"]
COURSE_C = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]


def _course_pipeline(columns: list[str]) -> Pipeline:
    """The course's ``power`` pipeline, written as the course writes it."""
    straight = [c for c in columns if c not in SKEWED]
    scaled = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    preprocessing = ColumnTransformer(
        [
            ("num", Pipeline(scaled), straight),
            ("power", Pipeline([*scaled, ("yeo_johnson", PowerTransformer())]), SKEWED),
        ]
    )
    model = LogisticRegression(max_iter=5000, random_state=42)
    return Pipeline([("preprocessing", preprocessing), ("model", model)])


def _run_id(output: str) -> str:
    return re.findall(r"[0-9a-f]{32}", output)[-1]


def _artifact(run_id: str, name: str) -> pd.DataFrame:
    client = open_tracking(get_settings())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.read_csv(client.download_artifacts(run_id, name))


@pytest.mark.slow
def test_course_example_reproduces_the_course_built_by_hand():
    settings = get_settings()
    write_synthetic("credit", 1200, seed=3, settings=settings)
    result = CliRunner().invoke(app, ["train", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.output)

    data = load_dataset("credit", settings=settings)
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.2, random_state=42
    )
    course = GridSearchCV(
        _course_pipeline(list(data.X.columns)),
        {"model__C": COURSE_C},
        cv=KFold(n_splits=5),
        scoring=SCORING,
        refit="neg_log_loss",
    )
    with warnings.catch_warnings():  # strong penalties predict no positive: precision is 0
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        course.fit(X_train, y_train)

    folds = _artifact(run_id, "cv_folds.csv")
    candidates = _artifact(run_id, "cv_results.csv")
    C_of = {row.candidate: json.loads(row.params)["clf__C"] for row in candidates.itertuples()}
    assert sorted(C_of.values()) == COURSE_C and (candidates["status"] == "ok").all()
    compared = 0
    for i, C in enumerate(course.cv_results_["param_model__C"]):
        candidate = next(k for k, v in C_of.items() if v == C)
        for metric in SCORING:
            ours = folds[(folds["candidate"] == candidate) & (folds["metric"] == metric)]
            theirs = [course.cv_results_[f"split{k}_test_{metric}"][i] for k in range(5)]
            np.testing.assert_allclose(ours.sort_values("fold")["test_score"], theirs, atol=1e-9)
            compared += 5
    assert compared == 10 * 6 * 5

    # the same best C, refitted on the same rows, scores the same on the same test rows
    run = open_tracking(settings).get_run(run_id)
    assert float(run.data.params["best.clf__C"]) == course.best_params_["model__C"]
    for metric in SCORING:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            scorer = check_scoring(course.best_estimator_, metric)
            theirs = scorer(course.best_estimator_, X_test, y_test)
        assert run.data.metrics[f"test_{metric}"] == pytest.approx(theirs, abs=1e-9)
        best = course.best_index_
        assert run.data.metrics[f"cv_{metric}_mean"] == pytest.approx(
            course.cv_results_[f"mean_test_{metric}"][best], abs=1e-9
        )


def test_course_recipes_are_the_course_steps_and_power_is_not():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "x": rng.normal(size=200),
            "skewed": rng.lognormal(0, 1.2, 200),
            "flag": rng.random(200) < 0.3,
        }
    )
    X.loc[::7, "skewed"] = np.nan
    roles = ColumnRoles(numeric=("x", "skewed"), boolean=("flag",), skewed=("skewed",))
    scaled = lambda: [SimpleImputer(strategy="median"), StandardScaler()]  # noqa: E731

    def by_hand(columns, *steps):
        values = X[columns].astype(float).to_numpy()
        for step in steps:
            values = step.fit_transform(values)
        return values

    basic = build_recipe("course_basic", roles, X).fit_transform(X)
    np.testing.assert_allclose(basic, by_hand(["x", "skewed", "flag"], *scaled()), atol=1e-12)
    power = build_recipe("course_power", roles, X)
    out = pd.DataFrame(power.fit_transform(X), columns=power.get_feature_names_out())
    np.testing.assert_allclose(out[["x", "flag"]], by_hand(["x", "flag"], *scaled()), atol=1e-12)
    expected = by_hand(["skewed"], *scaled(), PowerTransformer())
    np.testing.assert_allclose(out[["skewed"]], expected, atol=1e-12)
    # mlfactory's own power transforms the raw values: a different model
    ours = pd.DataFrame(
        build_recipe("power", roles, X).fit_transform(X), columns=out.columns.sort_values()
    )
    assert np.abs(ours["skewed"].to_numpy() - out["skewed"].to_numpy()).max() > 1e-3


def test_split_and_fold_options_default_unchanged_and_the_course_s():
    settings = get_settings()
    write_synthetic("credit", 600, seed=1, settings=settings)
    default = load_spec(EXAMPLE, ["test_stratify=true", "cv.kind=auto", "cv.shuffle=true"])
    resolved = default.resolve(settings)
    assert resolved.split.method == "stratified"
    assert list(resolved.train_idx) == sorted(resolved.train_idx)
    assert isinstance(resolved.cv, StratifiedKFold)
    assert (resolved.cv.shuffle, resolved.cv.random_state) == (True, 42)

    course = load_spec(EXAMPLE).resolve(settings)
    assert course.split.method == "unstratified"
    rows = np.arange(len(course.dataset.y))
    train, test = train_test_split(rows, test_size=0.2, random_state=42)
    assert list(course.train_idx) == list(train) and list(course.test_idx) == list(test)
    assert isinstance(course.cv, KFold) and course.cv.shuffle is False
    unshuffled = load_spec(EXAMPLE, ["cv.kind=stratified"]).resolve(settings).cv
    assert isinstance(unshuffled, StratifiedKFold) and unshuffled.shuffle is False


def test_course_grid_fits_without_future_warnings():
    grid = load_grid("logistic_regression_course.json")
    assert "clf__penalty" not in grid and grid["clf__C"] == COURSE_C
    X = pd.DataFrame({"a": np.linspace(-2, 2, 60), "b": np.cos(np.arange(60))})
    y = (X["a"] + 0.3 * X["b"] > 0).astype(int)
    pipeline = Pipeline([("preproc", StandardScaler()), ("clf", LogisticRegression(max_iter=5000))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        for C in grid["clf__C"]:
            params = {k: (C if k == "clf__C" else v[0]) for k, v in grid.items()}
            clone(pipeline).set_params(**params).fit(X, y)


GRID_SPEC = """
name = "penalties"
dataset = "credit"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "grid"
[search.param_grid]
clf__C = [0.1, 1.0]
clf__penalty = ["l1", "l2"]
clf__solver = ["lbfgs", "liblinear"]
"""


def test_penalty_grids_become_l1_ratio_and_invalid_pairs_are_not_tried(tmp_path):
    write_synthetic("credit", 600, seed=2, settings=get_settings())
    (tmp_path / "grid.toml").write_text(GRID_SPEC)
    result = CliRunner().invoke(app, ["train", str(tmp_path / "grid.toml")])
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.output)
    candidates = _artifact(run_id, "cv_results.csv")
    assert (candidates["status"] == "ok").all()
    tried = {
        (p["clf__solver"], p["clf__l1_ratio"], p["clf__C"])
        for p in map(json.loads, candidates["params"])
    }
    # l1 with lbfgs is not a candidate; penalty became l1_ratio (l1 -> 1, l2 -> 0)
    assert tried == {
        (solver, ratio, C)
        for solver, ratio in [("liblinear", 1.0), ("lbfgs", 0.0), ("liblinear", 0.0)]
        for C in (0.1, 1.0)
    }
    assert not any("penalty" in p for p in candidates["params"])
    # what was left out is recorded with the run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = open_tracking(get_settings()).download_artifacts(run_id, "spec/resolved_spec.json")
    cell = json.loads(Path(path).read_text())["cells"][0]
    assert cell["skipped_candidates"] == ["penalty='l1', solver='lbfgs'"]
    shown = CliRunner().invoke(app, ["spec", "show", str(tmp_path / "grid.toml")])
    assert "1 grid combination(s) left out" in shown.output
    assert "penalty='l1', solver='lbfgs'" in shown.output


MATRIX_SPEC = """
name = "names"
dataset = "credit"
preprocessing = ["basic", "power"]
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc", "accuracy"]
[search]
kind = "grid"
param_grid = {clf__C = [0.1, 1.0]}
"""


def test_candidate_cell_and_parent_runs_name_cv_metrics_alike(tmp_path):
    settings = get_settings()
    write_synthetic("credit", 600, seed=4, settings=settings)
    (tmp_path / "matrix.toml").write_text(MATRIX_SPEC)
    result = CliRunner().invoke(app, ["train", str(tmp_path / "matrix.toml")])
    assert result.exit_code == 0, result.output
    client = open_tracking(settings)
    parent = client.get_run(_run_id(result.output))
    runs = client.search_runs([parent.info.experiment_id])
    by_role: dict[str, list] = {}
    for run in runs:
        by_role.setdefault(run.data.tags["mlfactory.role"], []).append(run)
    assert {k: len(v) for k, v in by_role.items()} == {"parent": 1, "cell": 2, "candidate": 4}
    expected = {
        f"cv_{prefix}{metric}_{stat}"
        for prefix in ("", "train_")
        for metric in ("roc_auc", "accuracy")
        for stat in ("mean", "std")
    } | {"cv_fit_seconds_mean"}
    for run in runs:
        cv_names = {m for m in run.data.metrics if m.startswith("cv_")}
        assert cv_names == expected, run.data.tags["mlfactory.role"]
    best_cell = client.get_run(parent.data.tags["mlfactory.best_run_id"])
    best_candidate = next(
        run
        for run in by_role["candidate"]
        if run.data.tags["mlfactory.cell"] == best_cell.data.tags["mlfactory.cell"]
        and run.data.tags["mlfactory.rank"] == "1"
    )
    for name in expected - {"cv_fit_seconds_mean"}:
        value = best_candidate.data.metrics[name]
        assert best_cell.data.metrics[name] == value == parent.data.metrics[name]
    board = _artifact(parent.info.run_id, "leaderboard.csv")
    assert "cv_roc_auc_mean" in board.columns
