"""Tree models as one ai.onnx.ml ``TreeEnsemble`` (opset 5) in double precision.

skl2onnx writes the older ``TreeEnsembleClassifier``/``Regressor`` nodes, whose outputs are
32-bit floats whatever the input. ``TreeEnsemble`` (ai.onnx.ml 5, run by onnxruntime) keeps the
input's type end to end: double thresholds, double leaf values, double sums. Each converter here
reproduces scikit-learn's arithmetic:

* ``DecisionTree*``, ``RandomForest*``, ``ExtraTrees*`` and ``GradientBoosting*`` compare
  ``float32(x)`` with a double threshold (scikit-learn casts ``X`` to float32 first): the graph
  casts to float and back before the trees, so every comparison is scikit-learn's own;
* ``HistGradientBoosting*`` compares the double ``x`` with its double threshold, widened by
  ``1e-12`` (relative) so that a value exactly on a split still goes left when the preprocessing
  before it differs from numpy's in the last bits (a value within that sliver above a split goes
  left too, where scikit-learn sends it right);
* missing values follow each node's ``missing_go_to_left``;
* probabilities are the forest's mean of leaf fractions, or the boosting's logistic/softmax of
  the raw score, computed in double.

A tree appears once per output (``TreeEnsemble`` leaves hold one target each): a forest of
``k > 2`` classes holds ``k`` copies of every tree, one per class; a two-class forest holds one,
for the second class (leaf fractions sum to one, so the first class's probability is the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlfactory.compile._graph import Graph, NotCompilable

__all__ = ["TREE_MODELS", "register_tree_converters"]

_LEQ = 0
HIST_THRESHOLD_SLACK = 1e-12
"""Relative widening of HistGradientBoosting thresholds (see :func:`_hist_tree`): standardising
after Yeo-Johnson amplified onnxruntime's last-bit differences to ~40 ulps on credit data."""


@dataclass
class _Tree:
    """One tree in plain arrays; ``values`` is (nodes, targets)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    values: np.ndarray


def _sklearn_tree(tree: Any, values: np.ndarray) -> _Tree:
    missing = getattr(tree, "missing_go_to_left", None)
    if missing is None:  # scikit-learn < 1.3: no missing-value support in trees
        missing = np.zeros(tree.node_count, dtype=np.uint8)
    return _Tree(
        tree.children_left,
        tree.children_right,
        tree.feature,
        tree.threshold,
        np.asarray(missing),
        values,
    )


def _hist_tree(predictor: Any) -> _Tree:
    nodes = predictor.nodes
    if np.any(nodes["is_categorical"]):
        raise NotCompilable("categorical splits of HistGradientBoosting are not compiled")
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    thresholds = nodes["num_threshold"].astype(np.float64)
    # A split of HistGradientBoosting can sit exactly on a training value (a percentile of
    # repeated values); the graph's preprocessing may differ from numpy's in the last bits
    # (Yeo-Johnson's expm1/log1p), which would send that value right. The threshold is widened
    # by HIST_THRESHOLD_SLACK (relative): a value on it goes left, as in scikit-learn.
    thresholds = thresholds + np.maximum(np.abs(thresholds), 1.0) * HIST_THRESHOLD_SLACK
    return _Tree(
        left,
        right,
        nodes["feature_idx"].astype(np.int64),
        thresholds,
        nodes["missing_go_to_left"].astype(np.uint8),
        nodes["value"].astype(np.float64).reshape(-1, 1),
    )


class _Ensemble:
    """Accumulates trees (each for one target) into ``TreeEnsemble`` attributes."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.parts: dict[str, list[np.ndarray]] = {
            k: []
            for k in (
                "feature",
                "split",
                "true",
                "true_leaf",
                "false",
                "false_leaf",
                "missing",
                "leaf_target",
                "leaf_weight",
            )
        }
        self.nodes = 0
        self.leaves = 0

    def add(self, tree: _Tree, target: int, column: int = 0) -> None:
        is_leaf = np.asarray(tree.left) == -1
        interior = np.flatnonzero(~is_leaf)
        leaves = np.flatnonzero(is_leaf)
        count = len(tree.left)
        leaf_pos = np.full(count, -1, dtype=np.int64)
        leaf_pos[leaves] = self.leaves + np.arange(len(leaves))
        weights = np.asarray(tree.values[leaves, column], dtype=np.float64)
        p = self.parts
        if len(interior) == 0:  # a single leaf: one node whose branches both reach it
            self.roots.append(self.nodes)
            for key, value in (
                ("feature", [0]),
                ("split", [0.0]),
                ("true", [self.leaves]),
                ("true_leaf", [1]),
                ("false", [self.leaves]),
                ("false_leaf", [1]),
                ("missing", [0]),
            ):
                p[key].append(np.asarray(value))
            self.nodes += 1
        else:
            node_pos = np.full(count, -1, dtype=np.int64)
            node_pos[interior] = self.nodes + np.arange(len(interior))
            if is_leaf[0]:
                raise ValueError("tree root is a leaf but the tree has interior nodes")
            self.roots.append(int(node_pos[0]))
            left = np.asarray(tree.left)[interior]
            right = np.asarray(tree.right)[interior]
            p["feature"].append(np.asarray(tree.feature)[interior].astype(np.int64))
            p["split"].append(np.asarray(tree.threshold, dtype=np.float64)[interior])
            p["true_leaf"].append(is_leaf[left].astype(np.int64))
            p["true"].append(np.where(is_leaf[left], leaf_pos[left], node_pos[left]))
            p["false_leaf"].append(is_leaf[right].astype(np.int64))
            p["false"].append(np.where(is_leaf[right], leaf_pos[right], node_pos[right]))
            p["missing"].append(np.asarray(tree.missing_left)[interior].astype(np.int64))
            self.nodes += len(interior)
        p["leaf_target"].append(np.full(len(leaves), target, dtype=np.int64))
        p["leaf_weight"].append(weights)
        self.leaves += len(leaves)

    def attributes(self, n_targets: int, aggregate: int = 1) -> dict[str, Any]:
        from onnx import numpy_helper

        def cat(key: str) -> np.ndarray:
            return np.concatenate(self.parts[key])

        return {
            "n_targets": n_targets,
            "aggregate_function": aggregate,  # SUM
            "post_transform": 0,  # NONE: links are computed by later nodes, in double
            "tree_roots": self.roots,
            "nodes_modes": numpy_helper.from_array(
                np.full(self.nodes, _LEQ, dtype=np.uint8), "nodes_modes"
            ),
            "nodes_featureids": cat("feature").tolist(),
            "nodes_splits": numpy_helper.from_array(
                cat("split").astype(np.float64), "nodes_splits"
            ),
            "nodes_truenodeids": cat("true").tolist(),
            "nodes_trueleafs": cat("true_leaf").tolist(),
            "nodes_falsenodeids": cat("false").tolist(),
            "nodes_falseleafs": cat("false_leaf").tolist(),
            "nodes_missing_value_tracks_true": cat("missing").tolist(),
            "leaf_targetids": cat("leaf_target").tolist(),
            "leaf_weights": numpy_helper.from_array(
                cat("leaf_weight").astype(np.float64), "leaf_weights"
            ),
        }


# What each model family is, for the converter ------------------------------------------------
def _forest_trees(model: Any) -> list[Any]:
    return list(getattr(model, "estimators_", [model]))


def _classifier_ensemble(model: Any) -> tuple[_Ensemble, int, str]:
    """Ensemble, number of raw outputs and the kind of link for a classifier."""
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

    ensemble = _Ensemble()
    if isinstance(model, HistGradientBoostingClassifier):
        k = model.n_trees_per_iteration_
        for iteration in model._predictors:
            for target, predictor in enumerate(iteration):
                ensemble.add(_hist_tree(predictor), target)
        return ensemble, k, "logistic" if k == 1 else "softmax"
    if isinstance(model, GradientBoostingClassifier):
        _check_gb_init(model)
        k = model.estimators_.shape[1]
        rate = float(model.learning_rate)
        for stage in model.estimators_:
            for target, tree in enumerate(stage):
                values = tree.tree_.value[:, 0, :] * rate
                ensemble.add(_sklearn_tree(tree.tree_, values), target)
        return ensemble, k, "logistic_ge" if k == 1 else "softmax"
    if getattr(model, "n_outputs_", 1) != 1:
        raise NotCompilable("multi-output tree classifiers are not compiled")
    k = len(model.classes_)
    for estimator in _forest_trees(model):
        tree = estimator.tree_
        values = tree.value[:, 0, :k]
        if k == 2:  # leaf fractions sum to 1: the second class's mean gives both
            ensemble.add(_sklearn_tree(tree, values), 0, 1)
            continue
        for target in range(k):
            ensemble.add(_sklearn_tree(tree, values), target, target)
    return ensemble, 1 if k == 2 else k, "mean"


def _check_gb_init(model: Any) -> None:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = model.init_
    if not (init == "zero" or isinstance(init, DummyClassifier | DummyRegressor)):
        raise NotCompilable(f"GradientBoosting with init={type(init).__name__}")


def _regressor_ensemble(model: Any) -> tuple[_Ensemble, float, str]:
    """Ensemble, the divisor of the sum (a forest's mean) and the link."""
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

    ensemble = _Ensemble()
    if isinstance(model, HistGradientBoostingRegressor):
        for iteration in model._predictors:
            ensemble.add(_hist_tree(iteration[0]), 0)
        link = type(model._loss.link).__name__
        if link not in ("IdentityLink", "LogLink"):
            raise NotCompilable(f"HistGradientBoostingRegressor with link {link}")
        return ensemble, 1.0, "exp" if link == "LogLink" else "identity"
    if isinstance(model, GradientBoostingRegressor):
        _check_gb_init(model)
        rate = float(model.learning_rate)
        for stage in model.estimators_:
            tree = stage[0]
            ensemble.add(_sklearn_tree(tree.tree_, tree.tree_.value[:, 0, :] * rate), 0)
        return ensemble, 1.0, "identity"
    if getattr(model, "n_outputs_", 1) != 1:
        raise NotCompilable("multi-output tree regressors are not compiled")
    trees = _forest_trees(model)
    for estimator in trees:
        tree = estimator.tree_
        ensemble.add(_sklearn_tree(tree, tree.value[:, 0, :]), 0)
    return ensemble, float(len(trees)), "identity"


def _baseline(model: Any, n_features: int) -> np.ndarray | None:
    """The raw score every row starts from (boosting), or ``None`` (forests)."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )

    if isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    if isinstance(model, GradientBoostingClassifier | GradientBoostingRegressor):
        zero = np.zeros((1, n_features), dtype=np.float32)
        return np.asarray(model._raw_predict_init(zero), dtype=np.float64).reshape(-1)
    return None


def _casts_to_float32(model: Any) -> bool:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return not isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor)


# skl2onnx glue --------------------------------------------------------------------------------
def _const(scope: Any, container: Any, name: str, value: np.ndarray) -> str:
    from onnx import numpy_helper

    full = scope.get_unique_variable_name(name)
    container.add_initializer(full, None, None, numpy_helper.from_array(value, full))
    return full


def _node(scope: Any, container: Any, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
    out = scope.get_unique_variable_name(name)
    container.add_node(
        op, inputs, [out], name=scope.get_unique_operator_name(op), op_version=None, **attrs
    )
    return out


def _as_double_matrix(scope: Any, container: Any, operator: Any) -> str:
    """The operator's inputs as one double matrix."""
    return Graph(scope, container).double_input(operator)


def _tree_input(scope: Any, container: Any, operator: Any) -> str:
    """The model's input as double; through float32 first where scikit-learn casts to it."""
    from onnx import TensorProto

    x = _as_double_matrix(scope, container, operator)
    if not _casts_to_float32(operator.raw_operator):
        return x
    x = _node(scope, container, "Cast", [x], "as_float32", to=TensorProto.FLOAT)
    return _node(scope, container, "Cast", [x], "as_double", to=TensorProto.DOUBLE)


def _ensemble_node(scope: Any, container: Any, x: str, ensemble: _Ensemble, k: int) -> str:
    out = scope.get_unique_variable_name("tree_sum")
    container.add_node(
        "TreeEnsemble",
        [x],
        [out],
        op_domain="ai.onnx.ml",
        op_version=3,  # skl2onnx knows ai.onnx.ml up to 3: convert() sets the graph's to 5
        name=scope.get_unique_operator_name("TreeEnsemble"),
        **ensemble.attributes(k),
    )
    return out


def _n_features(operator: Any) -> int:
    model = operator.raw_operator
    return int(getattr(model, "n_features_in_", 0) or operator.inputs[0].type.shape[1])


def convert_tree_classifier(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    ensemble, k, link = _classifier_ensemble(model)
    x = _tree_input(scope, container, operator)
    raw = _ensemble_node(scope, container, x, ensemble, k)
    baseline = _baseline(model, _n_features(operator))
    if baseline is not None:
        raw = _node(
            scope, container, "Add", [raw, _const(scope, container, "base", baseline)], "raw"
        )
    if link == "mean":
        count = np.array([float(len(_forest_trees(model)))], dtype=np.float64)
        proba = _node(scope, container, "Div", [raw, _const(scope, container, "n", count)], "p")
        if k == 1:  # two classes: the ensemble holds the second's mean, the first is the rest
            one = _const(scope, container, "one", np.array([1.0], dtype=np.float64))
            rest = _node(scope, container, "Sub", [one, proba], "p0")
            proba = _node(scope, container, "Concat", [rest, proba], "p", axis=1)
        index = _node(scope, container, "ArgMax", [proba], "index", axis=1, keepdims=0)
    elif link in ("logistic", "logistic_ge"):
        one = _const(scope, container, "one", np.array([1.0], dtype=np.float64))
        positive = _node(scope, container, "Sigmoid", [raw], "p1")
        negative = _node(scope, container, "Sub", [one, positive], "p0")
        proba = _node(scope, container, "Concat", [negative, positive], "p", axis=1)
        zero = _const(scope, container, "zero", np.array([0.0], dtype=np.float64))
        # scikit-learn: raw > 0 (HistGradientBoosting), raw >= 0 (GradientBoosting)
        compare = "GreaterOrEqual" if link == "logistic_ge" else "Greater"
        above = _node(scope, container, compare, [raw, zero], "above")
        flat = _node(scope, container, "Flatten", [above], "flat", axis=0)
        squeezed = _node(
            scope,
            container,
            "Squeeze",
            [flat, _const(scope, container, "axes", np.array([0], dtype=np.int64))],
            "sq",
        )
        index = _node(scope, container, "Cast", [squeezed], "index", to=7)  # INT64
    else:  # softmax
        proba = _node(scope, container, "Softmax", [raw], "p", axis=1)
        index = _node(scope, container, "ArgMax", [raw], "index", axis=1, keepdims=0)
    container.add_node("Identity", [proba], [operator.outputs[1].full_name])
    classes = np.asarray(model.classes_)
    if classes.dtype.kind in "iub":
        table = classes.astype(np.int64)
    elif classes.dtype.kind in "OUS":
        table = classes.astype(str).astype(object)
    else:
        raise NotCompilable(f"class labels of dtype {classes.dtype}")
    labels = _const(scope, container, "classes", table)
    container.add_node("Gather", [labels, index], [operator.outputs[0].full_name], axis=0)


def convert_tree_regressor(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    ensemble, divisor, link = _regressor_ensemble(model)
    x = _tree_input(scope, container, operator)
    raw = _ensemble_node(scope, container, x, ensemble, 1)
    baseline = _baseline(model, _n_features(operator))
    if baseline is not None:
        raw = _node(
            scope, container, "Add", [raw, _const(scope, container, "base", baseline)], "raw"
        )
    if divisor != 1.0:
        n = _const(scope, container, "n", np.array([divisor], dtype=np.float64))
        raw = _node(scope, container, "Div", [raw, n], "mean")
    if link == "exp":
        raw = _node(scope, container, "Exp", [raw], "exp")
    container.add_node("Identity", [raw], [operator.outputs[0].full_name])


def _tree_models() -> tuple[list[type], list[type]]:
    from sklearn import ensemble, tree

    classifiers = [
        tree.DecisionTreeClassifier,
        tree.ExtraTreeClassifier,
        ensemble.RandomForestClassifier,
        ensemble.ExtraTreesClassifier,
        ensemble.GradientBoostingClassifier,
        ensemble.HistGradientBoostingClassifier,
    ]
    regressors = [
        tree.DecisionTreeRegressor,
        tree.ExtraTreeRegressor,
        ensemble.RandomForestRegressor,
        ensemble.ExtraTreesRegressor,
        ensemble.GradientBoostingRegressor,
        ensemble.HistGradientBoostingRegressor,
    ]
    return classifiers, regressors


TREE_MODELS = (
    "DecisionTree",
    "ExtraTree",
    "RandomForest",
    "ExtraTrees",
    "GradientBoosting",
    "HistGradientBoosting",
)
"""Tree families compiled here (classifier and regressor of each)."""


def _double_classifier_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType

    rows = operator.inputs[0].get_first_dimension()
    classes = np.asarray(operator.raw_operator.classes_)
    label = StringTensorType if classes.dtype.kind in "OUS" else Int64TensorType
    operator.outputs[0].type = label([rows])
    operator.outputs[1].type = DoubleTensorType([rows, len(classes)])


def _double_regressor_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([rows, 1])


def register_tree_converters() -> None:
    """Replace skl2onnx's tree converters by these (process-wide; call once)."""
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map

    classifiers, regressors = _tree_models()
    for cls in classifiers:
        update_registered_converter(
            cls,
            sklearn_operator_name_map[cls],
            _double_classifier_shapes,
            convert_tree_classifier,
            overwrite=True,
            options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
        )
    for cls in regressors:
        update_registered_converter(
            cls,
            sklearn_operator_name_map[cls],
            _double_regressor_shapes,
            convert_tree_regressor,
            overwrite=True,
        )
