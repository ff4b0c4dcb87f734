"""``KNNImputer`` as an ONNX graph in double precision (skl2onnx has none for distance weights).

It follows scikit-learn's ``KNNImputer.transform`` step by step: ``nan_euclidean`` distances to
every training row (the same ``x.x - 2 x.y + y.y`` formula, corrected for missing coordinates and
scaled by the share of coordinates present), then for each column the ``n_neighbors`` nearest
training rows that have a value there (``TopK``), weighted uniformly or by inverse distance
(a zero distance takes all the weight), and the column's training mean where a row shares no
coordinate with any donor. Distance ties at the k-th neighbour may pick other donors than
scikit-learn's ``argpartition``: verification at promotion catches a pipeline where that matters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlfactory.compile._graph import Graph, NotCompilable

__all__ = ["register_knn_imputer"]


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    rows = operator.inputs[0].get_first_dimension()
    valid = int(np.sum(operator.raw_operator._valid_mask))
    operator.outputs[0].type = DoubleTensorType([rows, valid])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    model = operator.raw_operator
    if model.metric != "nan_euclidean" or not np.isnan(model.missing_values):
        raise NotCompilable(f"KNNImputer(metric={model.metric!r}) is not compiled")
    if model.add_indicator or model.keep_empty_features:
        raise NotCompilable("KNNImputer with add_indicator or keep_empty_features")
    if model.weights not in ("uniform", "distance"):
        raise NotCompilable(f"KNNImputer(weights={model.weights!r}) is not compiled")

    graph = Graph(scope, container)
    const, node = graph.const, graph.node
    x = graph.double_input(operator)
    fit_x = np.asarray(model._fit_X, dtype=np.float64)
    fit_missing = np.asarray(model._mask_fit_X, dtype=bool)
    n_features = fit_x.shape[1]
    fit_zero = np.where(fit_missing, 0.0, fit_x)
    zero, one = const("zero", np.array([0.0])), const("one", np.array([1.0]))

    # nan_euclidean distances, (rows, training rows), as sklearn.metrics.nan_euclidean_distances
    missing = node("IsNaN", [x])
    x0 = node("Where", [missing, zero, x])
    x_missing = node("Cast", [missing], to=TensorProto.DOUBLE)
    xx = node("ReduceSum", [node("Mul", [x0, x0]), const("axis1", np.array([1]))], keepdims=1)
    cross = node("MatMul", [x0, const("fit_t", fit_zero.T.copy())])
    dist = node("Mul", [cross, const("minus_two", np.array([-2.0]))])
    dist = node("Add", [dist, xx])
    dist = node("Add", [dist, const("yy", (fit_zero**2).sum(axis=1).reshape(1, -1))])
    dist = node("Max", [dist, zero])
    missing_t = const("fit_missing_t", fit_missing.T.astype(np.float64).copy())
    dist = node("Sub", [dist, node("MatMul", [node("Mul", [x0, x0]), missing_t])])
    dist = node("Sub", [dist, node("MatMul", [x_missing, const("yy_t", (fit_zero**2).T.copy())])])
    dist = node("Max", [dist, zero])
    present_t = const("fit_present_t", (~fit_missing).T.astype(np.float64).copy())
    present = node("MatMul", [node("Sub", [one, x_missing]), present_t])
    none_shared = node("Equal", [present, zero])
    dist = node("Div", [dist, node("Max", [present, one])])
    dist = node("Mul", [dist, const("n_features", np.array([float(n_features)]))])
    dist = node("Sqrt", [dist])
    inf = const("inf", np.array([np.inf]))
    dist = node("Where", [none_shared, inf, dist])  # NaN distances sort last, weigh nothing

    columns = []
    for col in range(n_features):
        if not model._valid_mask[col]:
            continue
        donors = np.flatnonzero(~fit_missing[:, col])
        k = min(int(model.n_neighbors), len(donors))
        x_col = node("Gather", [x, const("col", np.array([col], dtype=np.int64))], axis=1)
        candidates = node("Gather", [dist, const("donors", donors.astype(np.int64))], axis=1)
        nearest = scope.get_unique_variable_name("nearest")
        index = scope.get_unique_variable_name("nearest_index")
        container.add_node(
            "TopK",
            [candidates, const("k", np.array([k], dtype=np.int64))],
            [nearest, index],
            axis=1,
            largest=0,
            sorted=1,
        )
        values = node("Gather", [const("donor_values", fit_x[donors, col]), index], axis=0)
        if model.weights == "distance":
            weights = node("Reciprocal", [nearest])  # 1/inf = 0: no shared coordinate
            exact = node("IsInf", [weights])  # a zero distance takes all the weight
            any_exact = node(
                "ReduceMax",
                [node("Cast", [exact], to=TensorProto.DOUBLE), const("ax", np.array([1]))],
                keepdims=1,
            )
            weights = node(
                "Where",
                [
                    node("Greater", [any_exact, zero]),
                    node("Cast", [exact], to=TensorProto.DOUBLE),
                    weights,
                ],
            )
        else:
            weights = node("Cast", [node("Not", [node("IsInf", [nearest])])], to=TensorProto.DOUBLE)
        axis = const("ax", np.array([1]))
        total = node("ReduceSum", [node("Mul", [weights, values]), axis], keepdims=1)
        value = node("Div", [total, node("ReduceSum", [weights, axis], keepdims=1)])
        closest = node("Gather", [nearest, const("first", np.array([0], dtype=np.int64))], axis=1)
        mean = const("mean", np.array([fit_x[donors, col].mean()]))
        value = node("Where", [node("IsInf", [closest]), mean, value])
        columns.append(node("Where", [node("IsNaN", [x_col]), value, x_col]))
    container.add_node("Concat", columns, [operator.outputs[0].full_name], axis=1)


def _parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType

    operator = scope.declare_local_operator("SklearnKNNImputer", model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("variable", DoubleTensorType()))
    return operator.outputs


def register_knn_imputer() -> None:
    from skl2onnx import update_registered_converter
    from sklearn.impute import KNNImputer

    update_registered_converter(
        KNNImputer, "SklearnKNNImputer", _shape, _convert, overwrite=True, parser=_parse
    )
