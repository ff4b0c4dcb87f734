"""Every example spec validates, and resolves against small synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from mlfactory.datasets import WalkForwardSplit, write_synthetic
from mlfactory.datasets._base import ColumnRoles, Dataset, Task
from mlfactory.settings import load_settings
from mlfactory.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LINES = sorted(EXAMPLES.glob("*_line.toml"))  # factory line specs, not experiment specs
FILES = sorted(set(EXAMPLES.glob("*.toml")) - set(LINES))


def test_examples_exist():
    names = {p.stem for p in FILES}
    assert {"credit_logreg", "credit_matrix", "adult", "fires", "stocks"} <= names
    assert "breast_cancer_optuna" in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_validates(path):
    spec = load_spec(path)
    assert spec.name
    assert spec.cells()


@pytest.mark.parametrize("path", LINES, ids=lambda p: p.stem)
def test_example_line_validates(path):
    from mlfactory.line._spec import load_line

    line = load_line(path)
    assert line.name


def test_credit_examples_use_the_course_grid_and_a_matrix():
    spec = load_spec(EXAMPLES / "credit_logreg.toml")
    assert spec.search.param_grid == "grids/logistic_regression_course.json"
    assert len(load_spec(EXAMPLES / "credit_matrix.toml").cells()) == 4
    assert len(load_spec(EXAMPLES / "fires.toml").cells()) == 4


@pytest.mark.parametrize(
    ("stem", "dataset", "cells"),
    [
        ("credit_logreg", "credit", 1),
        ("credit_matrix", "credit", 4),
        ("adult", "adult", 1),
        ("fires", "fires", 4),
    ],
)
def test_file_examples_resolve_on_synthetic_files(stem, dataset, cells):
    settings = load_settings()
    write_synthetic(dataset, 300, seed=1, settings=settings)
    resolved = load_spec(EXAMPLES / f"{stem}.toml").resolve(settings)
    assert len(resolved.cells) == cells
    assert resolved.split.n_train + resolved.split.n_test == len(resolved.dataset.X)
    for cell in resolved.cells:
        with threadpool_limits(1):  # OpenMP spin-up dominates HistGradientBoosting on tiny data
            pipe = cell.pipeline.fit(resolved.X_train.head(150), resolved.y_train.head(150))
        assert len(pipe.predict(resolved.X_test)) == len(resolved.test_idx)


def test_breast_cancer_optuna_resolves():
    resolved = load_spec(EXAMPLES / "breast_cancer_optuna.toml").resolve()
    dists = resolved.cells[0].optuna_distributions()
    assert set(dists) == {"clf__C", "clf__gamma", "clf__kernel"}


def test_stocks_example_resolves_to_walk_forward_on_time_ordered_data():
    n_dates, tickers = 80, ("AAA", "BBB")
    dates = np.repeat(pd.date_range("2024-01-01", periods=n_dates), len(tickers))
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"date": dates, "ret_1": rng.normal(size=len(dates))})
    X.loc[::7, "ret_1"] = np.nan
    ds = Dataset(
        "stocks",
        X,
        pd.Series((rng.normal(size=len(dates)) > 0).astype(int)),
        Task.CLASSIFICATION,
        ColumnRoles(numeric=("ret_1",)),
        time_column="date",
        groups=pd.Series(np.tile(tickers, n_dates)),
        horizon=1,
    )
    resolved = load_spec(EXAMPLES / "stocks.toml").resolve(dataset=ds)
    assert isinstance(resolved.cv, WalkForwardSplit)
    assert (resolved.cv.purge, resolved.cv.embargo) == (1, 2)
    assert len(list(resolved.cv.split(resolved.X_train))) == 4
    assert resolved.cells[0].random_distributions()["clf__C"].rvs(random_state=0) > 0
