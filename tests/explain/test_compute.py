"""Explanations on data where the answer is known: only x0 and x1 carry signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlfactory.exceptions import DataError
from mlfactory.explain import (
    ExplainerKind,
    cached_explainer,
    clear_explainer_cache,
    explain_record,
    explainer_kind,
    partial_dependence_tables,
    permutation_importance_table,
    preprocessed,
    shap_values,
    top_pair,
)

FEATURES = [f"x{i}" for i in range(8)]


def _data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 8)), columns=FEATURES)
    logit = 3 * X["x0"] - 2 * X["x1"]
    y_class = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), name="y")
    y_reg = pd.Series(3 * X["x0"] - 2 * X["x1"] + 0.1 * rng.normal(size=n), name="y")
    return X, y_class, y_reg


def _pipeline(estimator) -> Pipeline:
    preproc = ColumnTransformer(
        [("num", StandardScaler(), FEATURES)], verbose_feature_names_out=False
    )
    return Pipeline([("preproc", preproc), ("clf", estimator)])


MODELS = {
    "logistic": (LogisticRegression(), "class", ExplainerKind.LINEAR, "log-odds"),
    "forest": (
        RandomForestClassifier(n_estimators=30, max_depth=5, random_state=0),
        "class",
        ExplainerKind.TREE,
        "probability",
    ),
    "boosting": (
        GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=0),
        "class",
        ExplainerKind.TREE,
        "log-odds",
    ),
    "knn": (KNeighborsClassifier(15), "class", ExplainerKind.KERNEL, "probability"),
    "ridge": (Ridge(), "reg", ExplainerKind.LINEAR, "prediction"),
    "forest_reg": (
        RandomForestRegressor(n_estimators=30, max_depth=5, random_state=0),
        "reg",
        ExplainerKind.TREE,
        "prediction",
    ),
    "knn_reg": (KNeighborsRegressor(15), "reg", ExplainerKind.KERNEL, "prediction"),
}


@pytest.fixture(scope="module")
def fitted():
    X, y_class, y_reg = _data()
    models = {}
    for name, (estimator, target, _, _) in MODELS.items():
        y = y_class if target == "class" else y_reg
        models[name] = _pipeline(estimator).fit(X.iloc[:300], y.iloc[:300])
    return X.iloc[300:], y_class.iloc[300:], y_reg.iloc[300:], models


@pytest.mark.parametrize("name", ["logistic", "forest", "ridge", "forest_reg"])
def test_importance_and_shap_rank_the_two_signal_features_first(fitted, name):
    X, y_class, y_reg, models = fitted
    y = y_class if MODELS[name][1] == "class" else y_reg
    scoring = "roc_auc" if MODELS[name][1] == "class" else "r2"
    importance = permutation_importance_table(
        models[name], X, y, scoring=scoring, n_repeats=3, seed=0
    )
    assert set(importance.top(2)) == {"x0", "x1"}
    assert importance.scoring == scoring
    assert importance.repeats.shape == (8 * 3, 3)
    # the box plot's repeats average to the table's mean
    means = importance.repeats.groupby("feature")["importance"].mean()
    np.testing.assert_allclose(means[importance.table["feature"]], importance.table["mean"])

    result = shap_values(models[name], X)
    assert set(result.mean_abs()["feature"].head(2)) == {"x0", "x1"}
    assert result.values.shape == (len(X), 8)


@pytest.mark.parametrize("name", list(MODELS))
def test_shap_additivity_on_the_explainers_scale(fitted, name):
    X, _, _, models = fitted
    _, _, kind, scale = MODELS[name]
    rows = X.head(20)
    result = shap_values(models[name], rows, X, nsamples=60)
    assert result.kind == kind and result.scale == scale
    total = result.base_value + result.values.to_numpy().sum(axis=1)
    np.testing.assert_allclose(total, result.output, atol=1e-6)
    # and the output really is the model's, on the documented scale
    clf, Z = models[name][-1], preprocessed(models[name], rows).to_numpy()
    expected = {
        "log-odds": lambda: clf.decision_function(Z),
        "probability": lambda: clf.predict_proba(Z)[:, 1],
        "prediction": lambda: clf.predict(Z),
    }[scale]()
    np.testing.assert_allclose(result.output, expected)


def test_linear_shap_equals_coefficient_times_centred_value(fitted):
    X, _, _, models = fitted
    model = models["ridge"]
    background = X.iloc[:50]
    result = shap_values(model, X.head(10), background, max_background=50)
    Z, Zb = preprocessed(model, X.head(10)), preprocessed(model, background)
    expected = (Z - Zb.mean()) * model[-1].coef_
    np.testing.assert_allclose(result.values.to_numpy(), expected.to_numpy(), atol=1e-9)
    assert result.base_value == pytest.approx(model[-1].predict(Zb.to_numpy()).mean())


def test_explainer_choice_by_model_family():
    assert explainer_kind(LogisticRegression()) == ExplainerKind.LINEAR
    assert explainer_kind(Ridge().fit([[0.0], [1.0]], [0.0, 1.0])) == ExplainerKind.LINEAR
    assert explainer_kind(RandomForestClassifier()) == ExplainerKind.TREE
    assert explainer_kind(KNeighborsClassifier()) == ExplainerKind.KERNEL


def test_partial_dependence_of_a_linear_model_has_its_slope(fitted):
    X, _, _, models = fitted
    model = models["ridge"]
    result = partial_dependence_tables(model, X, ["x0", "x1"], pair=("x0", "x1"))
    scaler = model[0].named_transformers_["num"]
    for i, feature in enumerate(["x0", "x1"]):
        block = result.one_way[result.one_way["feature"] == feature]
        assert len(block) == 20
        slope = np.polyfit(block["value"], block["average"], 1)[0]
        assert slope == pytest.approx(model[-1].coef_[i] / scaler.scale_[i], rel=1e-6)
    assert result.output == "prediction"
    assert result.two_way is not None and len(result.two_way) == 10 * 10
    # additive model: the two-way surface is the sum of the one-way effects (minus the mean)
    surface = result.two_way["average"].to_numpy().reshape(10, 10)
    assert np.ptp(np.diff(surface, axis=1), axis=0).max() < 1e-9
    with pytest.raises(DataError, match="unknown feature"):
        partial_dependence_tables(model, X, ["nope"])


def test_partial_dependence_of_a_classifier_is_a_probability_with_categories():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x0": rng.normal(size=300), "colour": rng.choice(["red", "blue"], 300)})
    y = ((X["x0"] > 0) | (X["colour"] == "red")).astype(int)
    preproc = ColumnTransformer(
        [("num", StandardScaler(), ["x0"]), ("cat", OneHotEncoder(), ["colour"])],
        verbose_feature_names_out=False,
    )
    model = Pipeline([("preproc", preproc), ("clf", LogisticRegression())]).fit(X, y)
    result = partial_dependence_tables(model, X, ["colour", "x0"])
    colour = result.one_way[result.one_way["feature"] == "colour"].set_index("value")["average"]
    assert set(colour.index) == {"red", "blue"} and colour["red"] > colour["blue"]
    assert result.output == "P(class=1)"
    assert result.one_way["average"].between(0, 1).all()
    assert result.categorical == ["colour"]


def test_explain_record_top_features_and_cache(fitted):
    X, _, _, models = fitted
    clear_explainer_cache()
    model = models["logistic"]
    record = X.iloc[[3]]
    background = X.head(50)  # at most max_background=50 rows: used as they are
    answer = explain_record(model, record, top_k=2, background=background)
    assert answer["explainer"] == "linear" and answer["scale"] == "log-odds"
    assert answer["class"] == 1
    # contributions are coef x (value - background mean) on the log-odds scale, largest first
    Z, Zb = preprocessed(model, record).iloc[0], preprocessed(model, background).mean()
    by_hand = ((Z - Zb) * model[-1].coef_[0]).abs().sort_values(ascending=False)
    assert [c["feature"] for c in answer["contributions"]] == list(by_hand.index[:2])
    assert abs(answer["contributions"][0]["contribution"]) == pytest.approx(by_hand.iloc[0])
    total = answer["base_value"] + sum(c["contribution"] for c in answer["contributions"])
    assert total + answer["rest"] == pytest.approx(answer["model_output"])
    assert answer["model_output"] == pytest.approx(model.decision_function(record)[0])
    assert answer["prediction"] == model.predict(record)[0]
    # the explainer is built once per model and background
    first = cached_explainer(model, X)
    assert cached_explainer(model, X) is first
    assert cached_explainer(model, X.head(60)) is not first
    tree = cached_explainer(models["forest"], None)
    assert cached_explainer(models["forest"], X) is tree  # tree SHAP needs no background


def test_explain_record_errors(fitted):
    X, _, _, models = fitted
    with pytest.raises(DataError, match="one row; got 2"):
        explain_record(models["forest"], X.head(2))
    with pytest.raises(DataError, match=r"lacks column.*x3"):
        explain_record(models["forest"], X.head(1).drop(columns="x3"))
    with pytest.raises(DataError, match="needs a background sample"):
        clear_explainer_cache()
        explain_record(models["knn"], X.head(1))


def test_top_pair_keeps_features_of_one_kind(fitted):
    assert top_pair(["colour", "x0", "size", "x1"], ["colour", "size"]) == ("colour", "size")
    assert top_pair(["colour", "x0", "x1"], ["colour"]) == ("x0", "x1")
    assert top_pair(["colour", "x0"], ["colour"]) is None
    X, _, _, models = fitted
    mixed = X.assign(colour=np.where(X["x2"] > 0, "red", "blue"))
    with pytest.raises(DataError, match="not one of each"):
        partial_dependence_tables(models["ridge"], mixed, ["x0"], pair=("x0", "colour"))
