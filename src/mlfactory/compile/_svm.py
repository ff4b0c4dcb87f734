"""``SVR`` as an ONNX graph in double precision (onnxruntime's ``SVMRegressor`` is float only).

The prediction is libsvm's: ``sum(dual_coef * K(x, sv)) + intercept`` with the kernel computed as
libsvm computes it (RBF: the sum of squared differences, not the expanded dot products).
Classifiers keep skl2onnx's ``SVMClassifier`` (libsvm's pairwise probability coupling, in
float): verification at promotion decides whether it is within tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["register_svr"]


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([rows, 1])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto, numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType

    model = operator.raw_operator
    kernel = model.kernel
    if kernel not in ("rbf", "linear", "poly", "sigmoid"):
        raise NotImplementedError(f"SVR(kernel={kernel!r}) is not compiled")

    def const(name: str, value: Any) -> str:
        full = scope.get_unique_variable_name(name)
        tensor = numpy_helper.from_array(np.asarray(value, dtype=np.float64), full)
        container.add_initializer(full, None, None, tensor)
        return full

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = scope.get_unique_variable_name(op.lower())
        container.add_node(op, inputs, [out], **attrs)
        return out

    names = []
    for variable in operator.inputs:  # one input per column when the model is the pipeline
        name = variable.full_name
        if not isinstance(variable.type, DoubleTensorType):
            name = node("Cast", [name], to=TensorProto.DOUBLE)
        names.append(name)
    x = names[0] if len(names) == 1 else node("Concat", names, axis=1)
    support = np.asarray(model.support_vectors_, dtype=np.float64)
    gamma = float(model._gamma)
    if kernel == "rbf":
        axes = scope.get_unique_variable_name("axes")
        container.add_initializer(
            axes, None, None, numpy_helper.from_array(np.array([1], dtype=np.int64), axes)
        )
        rows = node("Unsqueeze", [x, axes])  # (n, 1, features)
        diff = node("Sub", [rows, const("support", support[np.newaxis, :, :])])
        axis2 = scope.get_unique_variable_name("axis2")
        container.add_initializer(
            axis2, None, None, numpy_helper.from_array(np.array([2], dtype=np.int64), axis2)
        )
        squares = node("ReduceSum", [node("Mul", [diff, diff]), axis2], keepdims=0)
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
    container.add_node("Add", [total, intercept], [operator.outputs[0].full_name])


def register_svr() -> None:
    from skl2onnx import update_registered_converter
    from sklearn.svm import SVR

    update_registered_converter(SVR, "SklearnSVR", _shape, _convert, overwrite=True)
