"""Every spec error names the file, the field and the allowed values."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.datasets import load_iris

from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.exceptions import SpecError
from mlfactory.spec import MULTICLASS_DEFAULT_SCORING, load_spec

BASE = 'name = "e"\ndataset = "breast_cancer"\nmodel = "LogisticRegression"\n'


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(BASE)
    return path


def check(spec_file, overrides, *patterns):
    with pytest.raises(SpecError) as info:
        load_spec(spec_file, overrides)
    message = str(info.value)
    assert str(spec_file) in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"nope.toml: spec file not found"):
        load_spec(tmp_path / "nope.toml")


def test_malformed_toml_names_the_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n\nmodel = [1, \n[cv]\n')
    with pytest.raises(SpecError, match=r"bad.toml: malformed TOML: .*line 4"):
        load_spec(path)


def test_unknown_top_level_key(spec_file):
    check(spec_file, ["modle=KNN"], "unknown key 'modle'", "valid keys at the top level: name")


def test_unknown_section_key(spec_file):
    check(spec_file, ["search.n_iters=3"], "unknown key 'search.n_iters'", "[search]", "n_iter")


def test_missing_required_field(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('name = "x"\ndataset = "breast_cancer"\n')
    with pytest.raises(SpecError, match=r"m.toml: missing required field 'model'"):
        load_spec(path)


def test_bad_choice_lists_allowed_values(spec_file):
    check(spec_file, ["search.kind=bayes"], "'search.kind'", "'none', 'grid', 'random' or 'optuna'")
    check(spec_file, ["cv.kind=loo"], "'cv.kind'", "'walk_forward'")
    check(spec_file, ["test_size=1.5"], "'test_size'", "less than 1")


def test_unknown_dataset(spec_file):
    check(spec_file, ["dataset=cedit"], "field 'dataset'", "unknown dataset 'cedit'", "credit")


def test_inline_dataset_needs_target_and_source(spec_file):
    check(spec_file, ["dataset={ path = 'x.csv' }"], "field 'dataset'", "needs target and path")


def test_unknown_model_and_recipe(spec_file):
    check(spec_file, ["model=Forest"], "field 'model'", "unknown model 'Forest'", "RandomForest")
    check(spec_file, ["preprocessing=raw"], "field 'preprocessing'", "basic, power, robust_knn")


def test_model_not_for_the_task(spec_file):
    check(spec_file, ["model=Lasso"], "'Lasso' does not do classification", "NaiveBayes")


def test_declared_task_must_match_the_dataset(spec_file):
    check(spec_file, ["task=regression"], "field 'task'", "is classification, not regression")


def test_unknown_metric_and_metric_for_the_wrong_task(spec_file):
    check(
        spec_file, ['cv.scoring=["auc"]'], "field 'cv.scoring'", "unknown metric 'auc'", "roc_auc"
    )
    check(spec_file, ['cv.scoring=["r2"]'], "'r2' does not score classification", "accuracy")
    check(
        spec_file,
        ["dataset=diabetes", "model=Ridge", 'cv.scoring=["accuracy"]'],
        "'accuracy' does not score regression",
        "neg_root_mean_squared_error",
    )


def test_refit_must_be_scored(spec_file):
    check(
        spec_file,
        ['cv.scoring=["roc_auc", "accuracy"]', "search.refit=f1"],
        "field 'search.refit'",
        "'f1' is not scored",
        "'roc_auc', 'accuracy'",
    )


def test_grid_key_that_is_not_a_parameter_lists_the_valid_ones(spec_file):
    message = check(
        spec_file,
        ["search.param_grid={ clf__Cs = [1.0] }"],
        "field 'search.param_grid'",
        "'clf__Cs' is not a parameter of the pipeline",
        "clf__C,",
        "clf__max_iter",
    )
    assert "(basic, LogisticRegression)" in message


def test_preproc_grid_keys_are_checked_too(spec_file):
    load_spec(spec_file, ['search.param_grid={ preproc__num__imputer__strategy = ["mean"] }'])
    check(
        spec_file,
        ['search.param_grid={ preproc__num__imputer__strategi = ["mean"] }'],
        "preproc__num__imputer__strategy",
    )


def test_one_grid_for_a_matrix_must_fit_every_model(spec_file):
    check(
        spec_file,
        ['model=["LogisticRegression", "KNN"]', "search.param_grid=grids/logistic_regression.json"],
        "(basic, KNN)",
        "'clf__C' is not a parameter",
        "clf__n_neighbors",
    )


def test_grid_errors_are_skipped_when_not_searching(spec_file):
    spec = load_spec(spec_file, ["search.param_grid={ clf__Cs = [1.0] }", "search.kind=none"])
    assert spec.search.kind == "none"


def test_bad_distributions(spec_file):
    check(
        spec_file,
        ["search.kind=optuna", "search.distributions={ clf__C = { type = 'float', low = 2 } }"],
        "field 'search.distributions'",
        "parameter 'clf__C'",
        "high",
    )
    check(
        spec_file,
        [
            "search.kind=optuna",
            "search.distributions={ clf__D = { type = 'int', low = 1, high = 3 } }",
        ],
        "'clf__D' is not a parameter",
    )


def test_missing_grid_file_lists_shipped_grids(spec_file):
    check(spec_file, ["search.param_grid=nope.json"], "grid file 'nope.json' not found", "knn.json")


def _iris() -> Dataset:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return Dataset("iris", X, y, Task.CLASSIFICATION, ColumnRoles(numeric=tuple(X.columns)))


def test_binary_only_metrics_on_a_multiclass_target(tmp_path):
    path = tmp_path / "iris.toml"
    path.write_text(
        'name = "iris"\ndataset = { path = "iris.csv", target = "y" }\nmodel = "KNN"\n'
        '[cv]\nscoring = ["accuracy", "f1"]\n[search]\nkind = "none"\n'
    )
    with pytest.raises(SpecError, match=r"field 'cv.scoring': \['f1'\] score two classes only"):
        load_spec(path).resolve(dataset=_iris())
    resolved = load_spec(path, ['cv.scoring=["f1_macro"]']).resolve(dataset=_iris())
    assert resolved.scoring == ["f1_macro"]
    path.write_text(path.read_text().replace('scoring = ["accuracy", "f1"]', ""))
    default = load_spec(path).resolve(dataset=_iris())
    assert default.scoring == list(MULTICLASS_DEFAULT_SCORING)
    assert "roc_auc_ovr" in default.scoring and "f1" not in default.scoring


def test_cv_kind_must_fit_the_data(tmp_path):
    path = tmp_path / "cv.toml"
    path.write_text('name = "c"\ndataset = "diabetes"\nmodel = "Ridge"\n')
    with pytest.raises(SpecError, match=r"field 'cv.kind': stratified folds need a classification"):
        load_spec(path, ["cv.kind=stratified"]).resolve()
    with pytest.raises(SpecError, match=r"field 'cv.kind': .*has no time column"):
        load_spec(path, ["cv.kind=walk_forward"]).resolve()
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=60), "x": range(60)})
    timed = Dataset(
        "t",
        frame,
        pd.Series([0.5 * i for i in range(60)]),
        Task.REGRESSION,
        ColumnRoles(numeric=("x",)),
        time_column="date",
    )
    with pytest.raises(SpecError, match=r"time-ordered .* never split at random"):
        load_spec(path, ["cv.kind=kfold"]).resolve(dataset=timed)
