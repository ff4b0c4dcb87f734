"""``SVR`` and two-class ``SVC`` as ONNX graphs in double precision (onnxruntime's
``SVMRegressor``/``SVMClassifier`` compute in float).

The decision value is libsvm's: ``sum(dual_coef * K(x, sv)) + intercept`` (the RBF kernel's
squared distances as one ``MatMul``, expanded, where libsvm sums squared differences: rounding
apart, the same).
A two-class ``SVC`` predicts the first class where the decision value is positive; with
``probability=True`` its probabilities are libsvm's: Platt's sigmoid of the decision value
(clipped to [1e-7, 1 - 1e-7]), then ``multiclass_probability``'s iterations (at most two for two
classes, unrolled here with the same stopping rule). Classifiers of more classes keep skl2onnx's
converter (float): verification at promotion decides whether it is within tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlfactory.compile._graph import Graph, NotCompilable

__all__ = ["register_svm"]


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([rows, 1])


def _decision(scope: Any, operator: Any, container: Any) -> tuple[Any, Any, str]:
    """``(const, node, decision)``: helpers and the (n, 1) libsvm decision value."""
    from onnx import numpy_helper

    model = operator.raw_operator
    kernel = model.kernel
    if kernel not in ("rbf", "linear", "poly", "sigmoid"):
        raise NotCompilable(f"SVR(kernel={kernel!r}) is not compiled")

    graph = Graph(scope, container)
    node = graph.node

    def const(name: str, value: Any) -> str:
        return graph.const(name, value, np.float64)

    x = graph.double_input(operator)
    support = np.asarray(model.support_vectors_, dtype=np.float64)
    gamma = float(model._gamma)
    if kernel == "rbf":
        # |x - sv|^2 as |x|^2 - 2 x.sv + |sv|^2: one MatMul instead of an (n, support,
        # features) tensor; it differs from libsvm's direct sum by rounding only (~1e-15)
        axis = scope.get_unique_variable_name("axis")
        container.add_initializer(
            axis, None, None, numpy_helper.from_array(np.array([1], dtype=np.int64), axis)
        )
        xx = node("ReduceSum", [node("Mul", [x, x]), axis], keepdims=1)
        cross = node("MatMul", [x, const("support_t", support.T.copy())])
        sv_sq = const("sv_sq", (support**2).sum(axis=1).reshape(1, -1))
        squares = node("Add", [node("Sub", [xx, node("Add", [cross, cross])]), sv_sq])
        squares = node("Max", [squares, const("zero_d", np.array([0.0]))])
        k = node("Exp", [node("Mul", [squares, const("minus_gamma", np.array([-gamma]))])])
    else:
        dot = node("MatMul", [x, const("support_t", support.T.copy())])
        if kernel == "linear":
            k = dot
        else:
            scaled = node("Mul", [dot, const("gamma", np.array([gamma]))])
            shifted = node("Add", [scaled, const("coef0", np.array([float(model.coef0)]))])
            if kernel == "poly":
                k = node("Pow", [shifted, const("degree", np.array([float(model.degree)]))])
            else:
                k = node("Tanh", [shifted])
    dual = np.asarray(model._dual_coef_, dtype=np.float64).T.copy()  # (support, 1)
    total = node("MatMul", [k, const("dual_coef", dual)])
    intercept = const("intercept", np.asarray(model._intercept_, dtype=np.float64))
    return const, node, node("Add", [total, intercept])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    _, _, decision = _decision(scope, operator, container)
    container.add_node("Identity", [decision], [operator.outputs[0].full_name])


def _classifier_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType
    from skl2onnx.shape_calculators.support_vector_machines import (
        calculate_sklearn_svm_output_shapes,
    )

    classes = np.asarray(operator.raw_operator.classes_)
    if len(classes) != 2:
        calculate_sklearn_svm_output_shapes(operator)
        return
    rows = operator.inputs[0].get_first_dimension()
    label = StringTensorType if classes.dtype.kind in "OUS" else Int64TensorType
    operator.outputs[0].type = label([rows])
    if len(operator.outputs) > 1:
        operator.outputs[1].type = DoubleTensorType([rows, 2])


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto
    from skl2onnx.operator_converters.support_vector_machines import (
        convert_sklearn_svm_classifier,
    )

    model = operator.raw_operator
    classes = np.asarray(model.classes_)
    if len(classes) != 2:
        convert_sklearn_svm_classifier(scope, operator, container)
        return
    if classes.dtype.kind not in "iubOUS":
        raise NotCompilable(f"class labels of dtype {classes.dtype}")
    const, node, decision = _decision(scope, operator, container)
    flat = node("Flatten", [decision], axis=0)
    dec = node("Squeeze", [flat, _int64(scope, container, [0])])  # (n,)
    zero = const("zero", np.array(0.0))
    first = node("Cast", [node("Greater", [dec, zero])], to=TensorProto.INT64)
    index = node("Sub", [_int64(scope, container, 1), first])  # dec > 0: class 0
    table = classes.astype(np.int64) if classes.dtype.kind in "iub" else classes.astype(object)
    labels = scope.get_unique_variable_name("classes")
    from onnx import numpy_helper

    container.add_initializer(labels, None, None, numpy_helper.from_array(table, labels))
    container.add_node("Gather", [labels, index], [operator.outputs[0].full_name], axis=0)
    if len(operator.outputs) < 2:
        return
    if model._probA.size == 0:
        raise NotCompilable("SVC(probability=False) is not compiled")
    one = const("one", np.array(1.0))
    # Platt: fApB = dec * A + B; p = exp(-fApB) / (1 + exp(-fApB)) if fApB >= 0 else
    # 1 / (1 + exp(fApB)); clipped to [1e-7, 1 - 1e-7]
    f = node("Add", [node("Mul", [dec, const("A", np.array(model._probA[0]))]),
                     const("B", np.array(model._probB[0]))])  # fmt: skip
    e_neg = node("Exp", [node("Neg", [f])])
    upper = node("Div", [e_neg, node("Add", [one, e_neg])])
    lower = node("Div", [one, node("Add", [one, node("Exp", [f])])])
    r01 = node("Where", [node("GreaterOrEqual", [f, zero]), upper, lower])
    r01 = node("Clip", [r01, const("lo", np.array(1e-7)), const("hi", np.array(1 - 1e-7))])
    r10 = node("Sub", [one, r01])
    # multiclass_probability for k = 2 (libsvm): Q = [[r10^2, -r10 r01], [-r10 r01, r01^2]]
    q00, q11 = node("Mul", [r10, r10]), node("Mul", [r01, r01])
    q01 = node("Neg", [node("Mul", [r10, r01])])
    half = const("half", np.array(0.5))
    start = node("Mul", [half, node("Add", [node("Mul", [dec, zero]), one])])  # 0.5 per row
    p = [start, start]
    q = [[q00, q01], [q01, q11]]
    eps = const("eps", np.array(0.005 / 2))
    active = None
    for _ in range(3):  # two iterations always suffice for two classes; one more to be sure
        qp = [node("Add", [node("Mul", [q[t][0], p[0]]), node("Mul", [q[t][1], p[1]])])
              for t in range(2)]  # fmt: skip
        pqp = node("Add", [node("Mul", [p[0], qp[0]]), node("Mul", [p[1], qp[1]])])
        error = node("Max", [node("Abs", [node("Sub", [qp[t], pqp])]) for t in range(2)])
        going = node("Not", [node("Less", [error, eps])])
        active = going if active is None else node("And", [active, going])
        new_p, new_qp, new_pqp = list(p), list(qp), pqp
        for t in range(2):
            diff = node("Div", [node("Sub", [new_pqp, new_qp[t]]), q[t][t]])
            new_p[t] = node("Add", [new_p[t], diff])
            grown = node("Add", [one, diff])
            inner = node(
                "Add",
                [
                    node("Mul", [diff, q[t][t]]),
                    node("Mul", [new_qp[t], const("two", np.array(2.0))]),
                ],
            )
            new_pqp = node(
                "Div",
                [node("Div", [node("Add", [new_pqp, node("Mul", [diff, inner])]), grown]), grown],
            )
            new_qp = [
                node("Div", [node("Add", [new_qp[j], node("Mul", [diff, q[t][j]])]), grown])
                for j in range(2)
            ]
            new_p = [node("Div", [new_p[j], grown]) for j in range(2)]
        p = [node("Where", [active, new_p[j], p[j]]) for j in range(2)]
    columns = [node("Unsqueeze", [p[j], _int64(scope, container, [1])]) for j in range(2)]
    container.add_node("Concat", columns, [operator.outputs[1].full_name], axis=1)


def _int64(scope: Any, container: Any, value: Any) -> str:
    from onnx import numpy_helper

    name = scope.get_unique_variable_name("i64")
    array = np.array(value, dtype=np.int64)
    container.add_initializer(name, None, None, numpy_helper.from_array(array, name))
    return name


def register_svm() -> None:
    from skl2onnx import update_registered_converter
    from sklearn.svm import SVC, SVR

    update_registered_converter(SVR, "SklearnSVR", _shape, _convert, overwrite=True)
    update_registered_converter(
        SVC,
        "SklearnSVC",
        _classifier_shape,
        _convert_classifier,
        overwrite=True,
        options={
            "zipmap": [True, False, "columns"],
            "nocl": [True, False],
            "output_class_labels": [False, True],
            "raw_scores": [True, False],
        },
    )
