"""Preprocessing recipes: named builders of a ``ColumnTransformer`` for given column roles.

Every recipe keeps feature names: ``get_feature_names_out`` works end to end. Output names are
*not* prefixed with the transformer name (``verbose_feature_names_out=False``), so explanations
show ``age`` and ``sex_male`` rather than ``num__age`` and ``cat__sex_male``; this is safe because
each input column belongs to exactly one role group. Columns with no role are dropped and empty
role groups are omitted. Output is dense (one-hot columns included) so every model in the zoo,
GaussianNB included, accepts it.

Every step is a scikit-learn class (no function or class of mlfactory): a logged model loads in
an environment built from its ``requirements.txt`` alone, where mlfactory is not installed.

pandas and scikit-learn load when a recipe is built, not with this module: listing the recipes
(``mlfactory spec recipes``) imports neither (issue #21).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mlfactory.exceptions import SpecError
from mlfactory.logs import get_logger

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, PowerTransformer, StandardScaler

    from mlfactory.datasets._base import ColumnRoles

__all__ = [
    "RECIPES",
    "SKEW_THRESHOLD",
    "build_recipe",
    "course_basic",
    "course_power",
    "detect_skewed",
    "list_recipes",
]

logger = get_logger(__name__)

SKEW_THRESHOLD = 1.0
"""``power`` straightens numeric columns whose absolute sample skewness exceeds this."""

RecipeBuilder = Callable[["ColumnRoles", "pd.DataFrame | None"], "ColumnTransformer"]


def _to_float() -> StandardScaler:
    """Cast booleans (``True``/``False``, pandas ``boolean``, 0/1) to float64; missing -> NaN.

    A ``StandardScaler`` that neither centres nor scales is exactly scikit-learn's float64 cast
    (missing values pass through as NaN) and keeps the feature names, with no custom code in the
    pipeline. ``mlfactory.serving._onnx`` converts it to an ONNX ``Cast``.
    """
    from sklearn.preprocessing import StandardScaler

    return StandardScaler(with_mean=False, with_std=False)


def _numeric_columns(roles: ColumnRoles) -> list[str]:
    """Numeric columns, including skewed ones the roles list only under ``skewed``."""
    return list(dict.fromkeys([*roles.numeric, *roles.skewed]))


def detect_skewed(X: pd.DataFrame, columns: Sequence[str], threshold: float = SKEW_THRESHOLD):
    """Columns of ``X`` with absolute sample skewness (pandas ``skew``) above ``threshold``."""
    import pandas as pd

    skewed = []
    for column in columns:
        value = pd.to_numeric(X[column], errors="coerce").skew()
        if pd.notna(value) and abs(value) > threshold:
            skewed.append(column)
    return skewed


def _boolean_pipeline() -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("to_float", _to_float()),
            ("imputer", SimpleImputer(strategy="most_frequent")),
        ]
    )


def _onehot(drop: str | None = None) -> OneHotEncoder:
    from sklearn.preprocessing import OneHotEncoder

    return OneHotEncoder(handle_unknown="ignore", drop=drop, sparse_output=False)


def _categorical_pipeline(drop: str | None = None) -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [("imputer", SimpleImputer(strategy="most_frequent")), ("onehot", _onehot(drop))]
    )


def _standard_numeric() -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())])


def _yeo_johnson() -> PowerTransformer:
    """Yeo-Johnson power transform, standardised."""
    from sklearn.preprocessing import PowerTransformer

    return PowerTransformer(method="yeo-johnson", standardize=True)


def _power_numeric() -> Pipeline:
    """Median impute, then Yeo-Johnson on the raw imputed values."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    return Pipeline([("imputer", SimpleImputer(strategy="median")), ("power", _yeo_johnson())])


def _knn_numeric() -> Pipeline:
    """KNN impute (7 neighbours, distance-weighted), then robust scaling."""
    from sklearn.impute import KNNImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler

    return Pipeline(
        [
            ("imputer", KNNImputer(n_neighbors=7, weights="distance")),
            ("scaler", RobustScaler()),
        ]
    )


def _assemble(groups: list[tuple[str, object, list[str]]]) -> ColumnTransformer:
    from sklearn.compose import ColumnTransformer

    transformers = [(name, step, cols) for name, step, cols in groups if cols]
    if not transformers:
        raise SpecError(
            "the column roles name no feature columns: expected at least one numeric, "
            "categorical, boolean or skewed column"
        )
    return ColumnTransformer(
        transformers, remainder="drop", verbose_feature_names_out=False, sparse_threshold=0.0
    )


def basic(roles: ColumnRoles, X: pd.DataFrame | None = None) -> ColumnTransformer:
    """Median impute + standardise numerics; booleans as 0/1; most-frequent impute + one-hot."""
    return _assemble(
        [
            ("num", _standard_numeric(), _numeric_columns(roles)),
            ("bool", _boolean_pipeline(), list(roles.boolean)),
            ("cat", _categorical_pipeline(), list(roles.categorical)),
        ]
    )


def power(roles: ColumnRoles, X: pd.DataFrame | None = None) -> ColumnTransformer:
    """As ``basic``, but skewed numerics get a Yeo-Johnson power transform (standardised).

    Skewed columns are ``roles.skewed``; when that is empty and ``X`` is given, numeric columns with
    ``|skewness| > 1`` on ``X`` (pass training rows only, so nothing leaks from the test set).
    """
    numeric = _numeric_columns(roles)
    if roles.skewed:
        skewed = list(roles.skewed)
    elif X is not None:
        skewed = detect_skewed(X, numeric)
        logger.debug("power recipe: detected skewed columns %s", skewed)
    else:
        skewed = []
    straight = [c for c in numeric if c not in skewed]
    return _assemble(
        [
            ("num", _standard_numeric(), straight),
            ("skewed", _power_numeric(), skewed),
            ("bool", _boolean_pipeline(), list(roles.boolean)),
            ("cat", _categorical_pipeline(), list(roles.categorical)),
        ]
    )


def robust_knn(roles: ColumnRoles, X: pd.DataFrame | None = None) -> ColumnTransformer:
    """KNN impute (7 neighbours, distance-weighted) + robust scaling; one-hot drops binary twins."""
    return _assemble(
        [
            ("num", _knn_numeric(), _numeric_columns(roles)),
            ("bool", _boolean_pipeline(), list(roles.boolean)),
            ("cat", _categorical_pipeline(drop="if_binary"), list(roles.categorical)),
        ]
    )


def _skewed_columns(roles: ColumnRoles, X: pd.DataFrame | None, recipe: str) -> list[str]:
    """``roles.skewed``; when empty, the numeric columns of ``X`` with ``|skewness| > 1``."""
    if roles.skewed:
        return list(roles.skewed)
    if X is None:
        return []
    skewed = detect_skewed(X, _numeric_columns(roles))
    logger.debug("%s recipe: detected skewed columns %s", recipe, skewed)
    return skewed


def _course_numeric(*steps: tuple[str, object]) -> Pipeline:
    """The course's numeric steps: booleans as 0/1, median impute, standardise, then ``steps``."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("to_float", _to_float()),
            ("imputer", SimpleImputer(strategy="median")),
            ("scaler", StandardScaler()),
            *steps,
        ]
    )


def course_basic(roles: ColumnRoles, X: pd.DataFrame | None = None) -> ColumnTransformer:
    """The course's basic: median impute + standardise every numeric and boolean (0/1) column.

    Unlike ``basic``, booleans are numbers here (median-imputed and standardised, as the course
    treats its 0/1 flag columns). Categorical columns (the course has none) are one-hot encoded.
    """
    return _assemble(
        [
            ("num", _course_numeric(), [*_numeric_columns(roles), *roles.boolean]),
            ("cat", _categorical_pipeline(), list(roles.categorical)),
        ]
    )


def course_power(roles: ColumnRoles, X: pd.DataFrame | None = None) -> ColumnTransformer:
    """The course's power: as ``course_basic``, skewed columns then get Yeo-Johnson too.

    Skewed columns go median impute -> ``StandardScaler`` -> ``PowerTransformer(yeo-johnson)``
    (standardised). ``power`` instead applies the power transform to the *raw* imputed values
    (no scaler before it) and keeps booleans apart; the two are not the same model.
    """
    skewed = _skewed_columns(roles, X, "course_power")
    straight = [c for c in _numeric_columns(roles) if c not in skewed]
    return _assemble(
        [
            ("num", _course_numeric(), [*straight, *roles.boolean]),
            ("skewed", _course_numeric(("power", _yeo_johnson())), skewed),
            ("cat", _categorical_pipeline(), list(roles.categorical)),
        ]
    )


RECIPES: dict[str, RecipeBuilder] = {
    "basic": basic,
    "power": power,
    "robust_knn": robust_knn,
    "course_basic": course_basic,
    "course_power": course_power,
}


def list_recipes() -> dict[str, str]:
    """Recipe name -> one-line description."""
    return {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in RECIPES.items()}


def build_recipe(name: str, roles: ColumnRoles, X: pd.DataFrame | None = None) -> ColumnTransformer:
    """Build the named recipe's (unfitted) ``ColumnTransformer`` for these column roles."""
    try:
        builder = RECIPES[name]
    except KeyError:
        raise SpecError(
            f"unknown preprocessing recipe {name!r}; valid recipes: {', '.join(RECIPES)}"
        ) from None
    if X is not None:
        missing = [c for c in roles.all + roles.skewed if c not in X.columns]
        if missing:
            raise SpecError(
                f"recipe {name!r}: columns {missing} named in the column roles are not in the "
                f"data; available columns: {', '.join(map(str, X.columns))}"
            )
    return builder(roles, X)
