"""SHAP values of a fitted pipeline, computed on its *preprocessed* features.

The explainer follows the model family (see :data:`TREE_MODELS` / :func:`explainer_kind`):

========  =====================================  =============================================
kind      models                                 scale of values, base value and output
========  =====================================  =============================================
linear    scikit-learn linear models             classifiers: log-odds (``decision_function``);
          (LogisticRegression, Ridge, Lasso…)    regressors: the prediction
tree      RandomForest, ExtraTrees, DecisionTree classifiers: probability (forests and single
          GradientBoosting, HistGradientBoosting trees average leaf probabilities) or log-odds
                                                 (gradient boosting's raw margin);
                                                 regressors: the prediction
kernel    anything else (KNN, SVM, MLP, NB…)     classifiers: probability (``predict_proba``);
                                                 regressors: the prediction
========  =====================================  =============================================

In every case ``base_value + sum(values of a row) == output of that row`` on that scale (SHAP's
additivity; exact for linear and tree explainers, enforced by the kernel explainer's fit).
Classifiers are explained for one class: the positive (last) class unless told otherwise.

The linear explainer uses a background sample (interventional: base value = output at the
background mean); the tree explainer uses the trees' own cover statistics (path dependent, no
background); the kernel explainer uses a seeded sample of at most ``max_background`` rows and
``nsamples`` coalitions per explained row. Its cost is rows x nsamples x background predictions:
bound the rows explained.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger

__all__ = [
    "LINEAR_MODULE",
    "TREE_MODELS",
    "ExplainerKind",
    "ShapExplainer",
    "ShapValues",
    "explainer_kind",
    "preprocessed",
    "shap_values",
]

logger = get_logger(__name__)

#: Estimators the tree explainer handles, and whether a classifier's raw output is a probability.
TREE_MODELS: dict[str, str] = {
    "RandomForestClassifier": "probability",
    "RandomForestRegressor": "prediction",
    "ExtraTreesClassifier": "probability",
    "ExtraTreesRegressor": "prediction",
    "DecisionTreeClassifier": "probability",
    "DecisionTreeRegressor": "prediction",
    "GradientBoostingClassifier": "log-odds",
    "GradientBoostingRegressor": "prediction",
    "HistGradientBoostingClassifier": "log-odds",
    "HistGradientBoostingRegressor": "prediction",
}
#: Estimators from this module get the linear explainer.
LINEAR_MODULE = "sklearn.linear_model"


class ExplainerKind(StrEnum):
    LINEAR = "linear"
    TREE = "tree"
    KERNEL = "kernel"


def explainer_kind(estimator: Any) -> ExplainerKind:
    """Which SHAP explainer suits ``estimator`` (the pipeline's last step)."""
    if type(estimator).__name__ in TREE_MODELS:
        return ExplainerKind.TREE
    if type(estimator).__module__.startswith(LINEAR_MODULE):
        return ExplainerKind.LINEAR
    return ExplainerKind.KERNEL


def preprocessed(pipeline: Pipeline, X: pd.DataFrame) -> pd.DataFrame:
    """The features the final estimator sees, named by the preprocessing's feature names."""
    head = pipeline[:-1]
    values = np.asarray(head.transform(X), dtype=float)
    try:
        names = [str(n) for n in head.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = [f"x{i}" for i in range(values.shape[1])]
    return pd.DataFrame(values, columns=names, index=X.index)


@dataclass
class ShapValues:
    """SHAP values of some rows: ``values`` (rows x preprocessed features) and their inputs.

    ``base_value + values.sum(axis=1)`` is the model output on ``scale`` (``output``).
    """

    values: pd.DataFrame
    data: pd.DataFrame  # preprocessed feature values of the same rows
    base_value: float
    output: np.ndarray  # the model's own output on ``scale`` for each row
    kind: ExplainerKind
    scale: str  # "log-odds", "probability" or "prediction"
    class_label: Any = None

    def mean_abs(self) -> pd.DataFrame:
        """Mean |SHAP| per feature, largest first: the global importance on the SHAP scale."""
        table = pd.DataFrame(
            {"feature": self.values.columns, "mean_abs_shap": self.values.abs().mean().to_numpy()}
        )
        return table.sort_values(
            ["mean_abs_shap", "feature"], ascending=[False, True], ignore_index=True
        )


def _as_2d(values: Any, column: int | None) -> np.ndarray:
    """SHAP values of one output: (rows, features, outputs) -> (rows, features)."""
    array = np.asarray(values, dtype=float)
    return array[:, :, column if column is not None else -1] if array.ndim == 3 else array


def _base(value: Any, column: int | None) -> float:
    """The base value of one output (the same for every row)."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 2:
        array = array[:, column if column is not None else -1]
    return float(array.reshape(-1)[0])


class ShapExplainer:
    """A SHAP explainer for one fitted pipeline, built once and reused (e.g. per request).

    ``background``: raw model-input rows (needed by the linear and kernel explainers).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        background: pd.DataFrame | None = None,
        *,
        target_class: Any = None,
        seed: int = 0,
        max_background: int = 50,
        nsamples: int | None = None,
    ) -> None:
        import shap  # slow import: only when explaining

        self.pipeline = pipeline
        self.estimator = pipeline[-1]
        self.kind = explainer_kind(self.estimator)
        self.seed = seed
        self.nsamples = nsamples
        self.classes = list(getattr(self.estimator, "classes_", []))
        self.is_classifier = is_classifier(self.estimator) and bool(self.classes)
        if self.is_classifier:
            label = self.classes[-1] if target_class is None else target_class
            if label not in self.classes:
                raise DataError(f"class {label!r} is not one of the model's classes {self.classes}")
            self.class_label = label
            self.class_index: int | None = self.classes.index(label)
        else:
            self.class_label, self.class_index = None, None
        self.scale = self._scale()
        if self.kind != ExplainerKind.TREE and background is None:
            raise DataError(
                f"the {self.kind} SHAP explainer of {type(self.estimator).__name__} needs a "
                "background sample of model-input rows (e.g. the run's reference_sample.parquet)"
            )
        bg = None
        if background is not None:
            bg_frame = preprocessed(pipeline, background)
            if len(bg_frame) > max_background:
                bg_frame = bg_frame.sample(n=max_background, random_state=seed)
            bg = bg_frame.to_numpy()
        if self.kind == ExplainerKind.LINEAR:
            self._explainer = shap.LinearExplainer(self.estimator, bg)
        elif self.kind == ExplainerKind.TREE:
            self._explainer = shap.TreeExplainer(self.estimator)
        else:
            self._explainer = shap.KernelExplainer(self._kernel_output, bg)

    # The model's output on the explainer's scale ------------------------------------------
    def _scale(self) -> str:
        if not self.is_classifier:
            return "prediction"
        if self.kind == ExplainerKind.LINEAR:
            return "log-odds"
        if self.kind == ExplainerKind.TREE:
            return TREE_MODELS[type(self.estimator).__name__]
        return "probability"

    def _kernel_output(self, Z: np.ndarray) -> np.ndarray:
        if self.is_classifier:
            return self.estimator.predict_proba(Z)[:, self.class_index]
        return np.asarray(self.estimator.predict(Z), dtype=float)

    def raw_output(self, Z: np.ndarray) -> np.ndarray:
        """The estimator's output on this explainer's scale, for preprocessed rows ``Z``."""
        if not self.is_classifier:
            return np.asarray(self.estimator.predict(Z), dtype=float)
        if self.scale == "probability":
            return self.estimator.predict_proba(Z)[:, self.class_index]
        margin = np.asarray(self.estimator.decision_function(Z), dtype=float)
        return margin if margin.ndim == 1 else margin[:, self.class_index]

    # Explaining ------------------------------------------------------------------------------
    def explain(self, X: pd.DataFrame) -> ShapValues:
        """SHAP values of the raw model-input rows ``X``."""
        data = preprocessed(self.pipeline, X)
        Z = data.to_numpy()
        if self.kind == ExplainerKind.KERNEL:
            values, base = self._kernel(Z)
        else:
            explanation = self._explainer(Z)
            values = _as_2d(explanation.values, self.class_index)
            base = _base(explanation.base_values, self.class_index)
        return ShapValues(
            values=pd.DataFrame(values, columns=data.columns, index=X.index),
            data=data,
            base_value=base,
            output=self.raw_output(Z),
            kind=self.kind,
            scale=self.scale,
            class_label=self.class_label,
        )

    def _kernel(self, Z: np.ndarray) -> tuple[np.ndarray, float]:
        """Kernel SHAP, seeded: the explainer draws coalitions from NumPy's global generator."""
        n_features = Z.shape[1]
        nsamples = self.nsamples or max(2 * n_features + 2, min(2048, 10 * n_features))
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            with warnings.catch_warnings():
                # a singular system falls back to least squares, still additive
                warnings.filterwarnings("ignore", message="Linear regression equation is singular")
                values = self._explainer.shap_values(
                    Z, nsamples=nsamples, l1_reg=False, silent=True
                )
        finally:
            np.random.set_state(state)
        return _as_2d(values, None), _base(self._explainer.expected_value, None)


def shap_values(
    pipeline: Pipeline,
    X: pd.DataFrame,
    background: pd.DataFrame | None = None,
    *,
    target_class: Any = None,
    seed: int = 0,
    max_background: int = 50,
    nsamples: int | None = None,
) -> ShapValues:
    """SHAP values of rows ``X`` (raw model inputs); ``background`` defaults to ``X`` itself."""
    explainer = ShapExplainer(
        pipeline,
        X if background is None else background,
        target_class=target_class,
        seed=seed,
        max_background=max_background,
        nsamples=nsamples,
    )
    return explainer.explain(X)
