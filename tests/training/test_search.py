import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlfactory.exceptions import SpecError
from mlfactory.training import SearchConfig, parallel_context, run_search, score_on

SCORING = ("neg_log_loss", "roc_auc", "accuracy")


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def _pipeline():
    return Pipeline([("preproc", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])


CV = StratifiedKFold(4, shuffle=True, random_state=0)


def test_grid_search_agrees_with_scikit_learn(cancer):
    X, y = cancer
    grid = {"clf__C": [0.01, 0.1, 1.0]}
    outcome = run_search(_pipeline(), X, y, CV, SearchConfig("grid", SCORING, "roc_auc", grid))
    reference = GridSearchCV(_pipeline(), grid, scoring=list(SCORING), refit="roc_auc", cv=CV)
    reference.fit(X, y)
    assert outcome.best_params == reference.best_params_
    assert outcome.best_scores["roc_auc"] == pytest.approx(reference.best_score_)
    assert outcome.candidates["mean_test_accuracy"].tolist() == pytest.approx(
        reference.cv_results_["mean_test_accuracy"]
    )
    assert len(outcome.folds) == 3 * 4 * len(SCORING)
    first = outcome.folds.query("candidate == 0 and fold == 2 and metric == 'accuracy'")
    assert first["test_score"].iloc[0] == pytest.approx(
        reference.cv_results_["split2_test_accuracy"][0]
    )
    # refitted on the whole training set
    expected = _pipeline().set_params(**reference.best_params_).fit(X, y)
    np.testing.assert_allclose(
        outcome.best_estimator.predict_proba(X), expected.predict_proba(X), rtol=1e-9
    )


def test_none_is_cross_validate(cancer):
    X, y = cancer
    outcome = run_search(_pipeline(), X, y, CV, SearchConfig("none", SCORING))
    reference = cross_validate(_pipeline(), X, y, cv=CV, scoring=list(SCORING))
    assert outcome.best_scores["neg_log_loss"] == pytest.approx(
        reference["test_neg_log_loss"].mean()
    )
    assert len(outcome.candidates) == 1


def test_failing_candidate_is_recorded_and_others_go_on(cancer):
    X, y = cancer
    grid = {"clf__C": [0.1, -1.0, 1.0]}
    outcome = run_search(_pipeline(), X, y, CV, SearchConfig("grid", SCORING, "accuracy", grid))
    failed = outcome.candidates.query("status == 'failed'")
    assert failed["params"].tolist() == [{"clf__C": -1.0}]
    assert "must be a float in the range" in failed["error"].iloc[0]
    assert outcome.best_params["clf__C"] in (0.1, 1.0)


def test_random_and_optuna_are_reproducible_by_seed(cancer):
    X, y = cancer
    random_config = SearchConfig(
        "random", SCORING, "roc_auc", {"clf__C": list(np.logspace(-3, 1, 20))}, n_iter=4, seed=7
    )
    first = run_search(_pipeline(), X, y, CV, random_config)
    second = run_search(_pipeline(), X, y, CV, random_config)
    assert first.candidates["params"].tolist() == second.candidates["params"].tolist()

    distributions = {"clf__C": optuna.distributions.FloatDistribution(1e-3, 10.0, log=True)}
    optuna_config = SearchConfig(
        "optuna", SCORING, "roc_auc", distributions=distributions, n_iter=4, seed=3
    )
    a = run_search(_pipeline(), X, y, CV, optuna_config)
    b = run_search(_pipeline(), X, y, CV, optuna_config)
    assert a.best_params == b.best_params
    assert a.candidates["mean_test_roc_auc"].tolist() == b.candidates["mean_test_roc_auc"].tolist()
    assert len(a.candidates) == 4
    best = a.candidates["mean_test_roc_auc"].max()
    assert a.best_scores["roc_auc"] == best


def test_regression_scores_on_held_out():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    pipeline = Pipeline([("preproc", StandardScaler()), ("clf", Ridge())])
    config = SearchConfig(
        "grid", ("r2", "neg_mean_absolute_error"), None, {"clf__alpha": [0.1, 10]}
    )
    outcome = run_search(pipeline, X[:300], y[:300], KFold(3), config)
    scores = score_on(outcome.best_estimator, X[300:], y[300:], config.scoring)
    assert set(scores) == {"r2", "neg_mean_absolute_error"}
    assert 0.2 < scores["r2"] < 0.8


def test_refit_metric_must_be_scored(cancer):
    X, y = cancer
    with pytest.raises(SpecError, match="refit metric 'f1'"):
        run_search(_pipeline(), X, y, CV, SearchConfig("none", SCORING, "f1"))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_same_results_sequential_parallel_and_on_a_cluster(cancer):
    from dask.distributed import LocalCluster

    X, y = cancer
    config = SearchConfig("grid", SCORING, "neg_log_loss", {"clf__C": [0.05, 0.5, 5.0]})
    sequential = run_search(_pipeline(), X, y, CV, config, n_jobs=1)
    parallel = run_search(_pipeline(), X, y, CV, config, n_jobs=2)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        parallel_context(cluster.scheduler_address, scatter=[X, y]),
    ):
        clustered = run_search(_pipeline(), X, y, CV, config, n_jobs=-1)
    for other in (parallel, clustered):
        assert other.best_params == sequential.best_params
        pd.testing.assert_frame_equal(other.folds, sequential.folds)
