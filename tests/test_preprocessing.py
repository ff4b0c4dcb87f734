"""Preprocessing recipes: values checked by hand and against scikit-learn's own pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import KNNImputer
from sklearn.preprocessing import PowerTransformer, RobustScaler

from mlfactory.datasets._base import ColumnRoles
from mlfactory.exceptions import SpecError
from mlfactory.preprocessing import RECIPES, build_recipe, detect_skewed, list_recipes


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 50.0, 40.0],
            "income": [1.0, 2.0, 3.0, 4.0, 1000.0],
            "city": ["paris", "lyon", None, "paris", "nice"],
            "owner": pd.array([True, False, None, True, True], dtype="boolean"),
            "ignored": ["a", "b", "c", "d", "e"],
        }
    )


ROLES = ColumnRoles(numeric=("age", "income"), categorical=("city",), boolean=("owner",))


def test_registry_lists_the_recipes_with_descriptions():
    assert set(RECIPES) == {"basic", "power", "robust_knn", "course_basic", "course_power"}
    assert all(list_recipes().values())


def test_unknown_recipe_lists_valid_names():
    with pytest.raises(SpecError, match=r"unknown preprocessing recipe 'raw'.*basic, power"):
        build_recipe("raw", ROLES)


def test_roles_naming_missing_columns_are_rejected(frame):
    with pytest.raises(SpecError, match=r"\['height'\]"):
        build_recipe("basic", ColumnRoles(numeric=("height",)), frame)


def test_no_feature_columns_is_an_error():
    with pytest.raises(SpecError, match="no feature columns"):
        build_recipe("basic", ColumnRoles())


def test_basic_values_by_hand(frame):
    ct = build_recipe("basic", ROLES)
    out = ct.fit_transform(frame)
    names = list(ct.get_feature_names_out())
    assert names == ["age", "income", "owner", "city_lyon", "city_nice", "city_paris"]
    # age: median of 20, 30, 50, 40 is 35 -> [20, 30, 35, 50, 40]; standardised with ddof=0.
    age = np.array([20, 30, 35, 50, 40.0])
    np.testing.assert_allclose(out[:, 0], (age - age.mean()) / age.std())
    # owner: NA -> most frequent (True) -> 1.0
    np.testing.assert_array_equal(out[:, 2], [1, 0, 1, 1, 1])
    # city: None -> most frequent (paris)
    np.testing.assert_array_equal(out[:, 5], [1, 0, 1, 1, 0])
    assert "ignored" not in names


def test_basic_ignores_unseen_categories(frame):
    ct = build_recipe("basic", ROLES).fit(frame)
    new = frame.head(1).assign(city="tokyo")
    row = ct.transform(new)
    np.testing.assert_array_equal(row[0, 3:], [0, 0, 0])


def test_empty_role_groups_are_omitted(frame):
    ct = build_recipe("basic", ColumnRoles(numeric=("age",))).fit(frame)
    assert [name for name, _, _ in ct.transformers_ if name != "remainder"] == ["num"]
    assert list(ct.get_feature_names_out()) == ["age"]


def test_power_uses_listed_skewed_columns_and_matches_yeo_johnson(frame):
    roles = ColumnRoles(numeric=("age", "income"), skewed=("income",))
    ct = build_recipe("power", roles, frame)
    out = ct.fit_transform(frame)
    assert list(ct.get_feature_names_out()) == ["age", "income"]
    expected = PowerTransformer(method="yeo-johnson").fit_transform(frame[["income"]])
    np.testing.assert_allclose(out[:, 1], expected[:, 0])


def test_power_detects_skew_when_roles_name_none(frame):
    assert detect_skewed(frame, ["age", "income"]) == ["income"]
    assert abs(frame["income"].skew()) > 1 > abs(frame["age"].skew())
    ct = build_recipe("power", ROLES, frame)
    skewed = {name: cols for name, _, cols in ct.transformers}
    assert skewed["skewed"] == ["income"]
    assert skewed["num"] == ["age"]


def test_power_without_data_or_roles_skews_nothing(frame):
    ct = build_recipe("power", ROLES)
    assert "skewed" not in {name for name, _, _ in ct.transformers}


def test_robust_knn_matches_sklearn_pieces(frame):
    ct = build_recipe("robust_knn", ROLES)
    out = ct.fit_transform(frame)
    names = list(ct.get_feature_names_out())
    assert names[:3] == ["age", "income", "owner"]
    numeric = frame[["age", "income"]]
    imputed = KNNImputer(n_neighbors=7, weights="distance").fit_transform(numeric)
    np.testing.assert_allclose(out[:, :2], RobustScaler().fit_transform(imputed))
    # city has three values: no column dropped; owner stays one 0/1 column
    assert names[3:] == ["city_lyon", "city_nice", "city_paris"]


@pytest.mark.filterwarnings("ignore:Found unknown categories:UserWarning")
def test_robust_knn_drops_one_column_of_binary_categoricals_and_ignores_unknowns():
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "sex": ["f", "m", "m", None]})
    ct = build_recipe("robust_knn", ColumnRoles(numeric=("x",), categorical=("sex",)))
    out = ct.fit_transform(X)
    assert list(ct.get_feature_names_out()) == ["x", "sex_m"]
    np.testing.assert_array_equal(out[:, 1], [0, 1, 1, 1])  # None -> most frequent "m"
    unseen = ct.transform(pd.DataFrame({"x": [2.0], "sex": ["x"]}))
    assert unseen[0, 1] == 0


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_gives_finite_dense_output_with_names(name, frame):
    ct = build_recipe(name, ROLES, frame)
    out = ct.fit_transform(frame)
    assert isinstance(out, np.ndarray)
    assert np.isfinite(out).all()
    assert out.shape[1] == len(ct.get_feature_names_out())
