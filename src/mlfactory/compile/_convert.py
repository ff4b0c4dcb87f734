"""A fitted pipeline to an ONNX graph in double precision (skl2onnx plus mlfactory's converters).

Every numeric column enters the graph as a 64-bit float, as pandas holds it, and stays double to
the output: scikit-learn computes in double, so the graph does too. skl2onnx converts the
preprocessing steps and most models; two gaps are filled here:

* the recipes' float cast (a ``StandardScaler`` that neither centres nor scales) becomes an ONNX
  ``Cast`` to double (booleans in, doubles out);
* tree models become one double-precision ``TreeEnsemble`` (:mod:`mlfactory.compile._trees`);
* ``SimpleImputer`` and ``PowerTransformer`` keep double constants (skl2onnx's round to float32);
* ``KNNImputer`` (:mod:`mlfactory.compile._knn`), ``SVR`` and two-class ``SVC``
  (:mod:`mlfactory.compile._svm`) and ``KNeighbors*`` (:mod:`mlfactory.compile._neighbors`) have
  double graphs of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlfactory.compile._graph import Graph, NotCompilable
from mlfactory.schema import InputColumn

__all__ = ["NUMERIC_TYPES", "TARGET_OPSET", "convert"]

NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
TARGET_OPSET = {"": 21, "ai.onnx.ml": 3}
"""ONNX opsets skl2onnx converts to; a graph with a ``TreeEnsemble`` (ai.onnx.ml 5: double
thresholds and leaves) then imports ai.onnx.ml 5, whose other operators are unchanged since 3."""
TREE_ML_OPSET = 5

_register_lock = threading.Lock()
_registered = False


def _is_cast(transformer: Any) -> bool:
    """The recipes' float cast: a ``StandardScaler`` that neither centres nor scales."""
    from sklearn.preprocessing import StandardScaler

    return (
        isinstance(transformer, StandardScaler)
        and not transformer.with_mean
        and not transformer.with_std
    )


def _register_scaler() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common._apply_operation import apply_cast, apply_concat
    from skl2onnx.common.data_types import DoubleTensorType, guess_tensor_type
    from skl2onnx.operator_converters.scaler_op import convert_sklearn_scaler
    from skl2onnx.proto import onnx_proto
    from skl2onnx.shape_calculators.scaler import calculate_sklearn_scaler_output_shapes
    from sklearn.preprocessing import StandardScaler

    def shape(operator: Any) -> None:
        if not _is_cast(operator.raw_operator):
            calculate_sklearn_scaler_output_shapes(operator)
            return
        rows = operator.inputs[0].get_first_dimension()
        widths = [v.type.shape[1] for v in operator.inputs]
        width = None if any(w is None for w in widths) else sum(widths)
        operator.outputs[0].type = DoubleTensorType([rows, width])

    def parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
        operator = scope.declare_local_operator("SklearnScaler", model)
        operator.inputs = inputs
        kind = DoubleTensorType() if _is_cast(model) else guess_tensor_type(inputs[0].type)
        operator.outputs.append(scope.declare_local_variable("variable", kind))
        return operator.outputs

    def convert_scaler(scope: Any, operator: Any, container: Any) -> None:
        if not _is_cast(operator.raw_operator):
            convert_sklearn_scaler(scope, operator, container)
            return
        names = [v.full_name for v in operator.inputs]
        source = names[0]
        if len(names) > 1:
            source = scope.get_unique_variable_name("to_float_concat")
            apply_concat(scope, names, source, container, axis=1)
        apply_cast(
            scope,
            source,
            operator.outputs[0].full_name,
            container,
            to=onnx_proto.TensorProto.DOUBLE,
        )

    update_registered_converter(
        StandardScaler,
        "SklearnScaler",
        shape,
        convert_scaler,
        overwrite=True,
        options={"div": ["std", "div", "div_cast"]},
        parser=parse,
    )


def _register_imputer() -> None:
    """``SimpleImputer`` in the input's own precision (skl2onnx's rounds fill values to float32).

    A string column's missing value never reaches the graph (a request with one is scored by
    scikit-learn), so its imputer passes the strings through.
    """
    from onnx import TensorProto, numpy_helper
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from sklearn.impute import SimpleImputer

    def kept(model: Any) -> np.ndarray:
        statistics = np.asarray(model.statistics_)
        if getattr(model, "keep_empty_features", False) or statistics.dtype.kind not in "fc":
            return np.arange(statistics.size)
        return np.flatnonzero(~np.isnan(statistics))

    def shape(operator: Any) -> None:
        rows = operator.inputs[0].get_first_dimension()
        kind = type(operator.inputs[0].type)
        operator.outputs[0].type = kind([rows, len(kept(operator.raw_operator))])

    def convert_imputer(scope: Any, operator: Any, container: Any) -> None:
        model = operator.raw_operator
        if getattr(model, "add_indicator", False):
            raise NotCompilable("SimpleImputer(add_indicator=True) is not compiled")
        names = [v.full_name for v in operator.inputs]
        source = names[0]
        if len(names) > 1:
            source = scope.get_unique_variable_name("impute_concat")
            container.add_node("Concat", names, [source], axis=1)
        out = operator.outputs[0].full_name
        missing = model.missing_values
        if isinstance(operator.inputs[0].type, StringTensorType):
            if isinstance(missing, str):
                convert_sklearn_imputer(scope, operator, container)
            else:  # nulls in strings are scored by scikit-learn before they get here
                container.add_node("Identity", [source], [out])
            return
        if not (isinstance(missing, float) and np.isnan(missing)) and missing is not None:
            raise NotCompilable(f"SimpleImputer(missing_values={missing!r})")
        if not isinstance(operator.inputs[0].type, DoubleTensorType):
            cast = scope.get_unique_variable_name("impute_double")
            container.add_node("Cast", [source], [cast], to=TensorProto.DOUBLE)
            source = cast
        columns = kept(model)
        if len(columns) != np.asarray(model.statistics_).size:
            index = scope.get_unique_variable_name("impute_kept")
            container.add_initializer(
                index, None, None, numpy_helper.from_array(columns.astype(np.int64), index)
            )
            gathered = scope.get_unique_variable_name("impute_gathered")
            container.add_node("Gather", [source, index], [gathered], axis=1)
            source = gathered
        fill = scope.get_unique_variable_name("impute_fill")
        values = np.asarray(model.statistics_, dtype=np.float64)[columns].reshape(1, -1)
        container.add_initializer(fill, None, None, numpy_helper.from_array(values, fill))
        isnan = scope.get_unique_variable_name("impute_isnan")
        container.add_node("IsNaN", [source], [isnan])
        container.add_node("Where", [isnan, fill, source], [out])

    def parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
        operator = scope.declare_local_operator("SklearnSimpleImputer", model)
        operator.inputs = inputs
        kind = StringTensorType() if isinstance(inputs[0].type, StringTensorType) else None
        operator.outputs.append(
            scope.declare_local_variable("variable", kind or DoubleTensorType())
        )
        return operator.outputs

    update_registered_converter(
        SimpleImputer, "SklearnSimpleImputer", shape, convert_imputer, overwrite=True, parser=parse
    )


def _register_power() -> None:
    """``PowerTransformer(method="yeo-johnson")`` in double, as scipy's ``yeojohnson`` computes it
    (``expm1(l * log1p(x)) / l`` for x >= 0, the mirrored form below 0), then standardised.
    skl2onnx's converter mixes float32 masks into a double graph."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.preprocessing import PowerTransformer

    def shape(operator: Any) -> None:
        rows = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = DoubleTensorType([rows, len(operator.raw_operator.lambdas_)])

    def convert_power(scope: Any, operator: Any, container: Any) -> None:
        model = operator.raw_operator
        if model.method != "yeo-johnson":
            raise NotCompilable(f"PowerTransformer(method={model.method!r})")

        graph = Graph(scope, container)
        node = graph.node

        def const(name: str, value: Any) -> str:  # a vector broadcasts over the rows
            array = np.asarray(value)
            return graph.const(name, array.reshape(1, -1) if array.ndim == 1 else array)

        x = graph.double_input(operator)
        eps = np.finfo(np.float64).eps
        lambdas = np.asarray(model.lambdas_, dtype=np.float64)
        zero_l, two_l = np.abs(lambdas) < eps, np.abs(lambdas - 2) <= eps
        one = const("one", np.array([1.0]))
        # x >= 0: log1p(x) where lambda == 0, else expm1(lambda * log1p(x)) / lambda
        log_pos = node("Log", [node("Add", [x, one])])
        lam = const("lambda", np.where(zero_l, 1.0, lambdas))
        pos_value = node(
            "Div", [node("Sub", [node("Exp", [node("Mul", [log_pos, lam])]), one]), lam]
        )
        if zero_l.any():  # a Where only where some column needs it (it is the slowest step)
            pos_value = node("Where", [const("lambda_zero", zero_l), log_pos, pos_value])
        # x < 0: -log1p(-x) where lambda == 2, else -expm1((2 - lambda) * log1p(-x)) / (2 - lambda)
        log_neg = node("Log", [node("Sub", [one, x])])
        lam2 = const("two_minus_lambda", np.where(two_l, 1.0, 2.0 - lambdas))
        neg_value = node(
            "Div", [node("Sub", [node("Exp", [node("Mul", [log_neg, lam2])]), one]), lam2]
        )
        if two_l.any():
            neg_value = node("Where", [const("lambda_two", two_l), log_neg, neg_value])
        neg_value = node("Neg", [neg_value])
        zero = const("zero", np.array([0.0]))
        value = node("Where", [node("GreaterOrEqual", [x, zero]), pos_value, neg_value])
        out = operator.outputs[0].full_name
        if model.standardize:
            scaler = model._scaler
            centred = node("Sub", [value, const("mean", np.asarray(scaler.mean_, np.float64))])
            scale = const("scale", np.asarray(scaler.scale_, np.float64))
            container.add_node("Div", [centred, scale], [out])
        else:
            container.add_node("Identity", [value], [out])

    update_registered_converter(
        PowerTransformer, "SklearnPowerTransformer", shape, convert_power, overwrite=True
    )


def register_converters() -> None:
    """mlfactory's converters, registered with skl2onnx once per process."""
    global _registered
    with _register_lock:
        if _registered:
            return
        from mlfactory.compile._knn import register_knn_imputer
        from mlfactory.compile._neighbors import register_neighbors
        from mlfactory.compile._svm import register_svm
        from mlfactory.compile._trees import register_tree_converters

        _register_scaler()
        _register_imputer()
        _register_power()
        register_knn_imputer()
        register_neighbors()
        register_svm()
        register_tree_converters()
        _registered = True


def initial_types(inputs: Sequence[InputColumn]) -> list[tuple[str, Any]]:
    """One graph input per column: double for numbers, booleans, strings."""
    from skl2onnx.common.data_types import BooleanTensorType, DoubleTensorType, StringTensorType

    types = []
    for column in inputs:
        if column.type in NUMERIC_TYPES:
            types.append((column.name, DoubleTensorType([None, 1])))
        elif column.type == "boolean":
            types.append((column.name, BooleanTensorType([None, 1])))
        elif column.type == "string":
            types.append((column.name, StringTensorType([None, 1])))
        else:
            raise ValueError(f"column {column.name!r} of type {column.type} has no ONNX input")
    return types


def final_step(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def convert(model: Any, inputs: Sequence[InputColumn]) -> bytes:
    """The serialized ONNX graph of ``model`` (raises what the converters raise)."""
    from skl2onnx import convert_sklearn

    register_converters()
    final = final_step(model)
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    graph = convert_sklearn(
        model, initial_types=initial_types(inputs), options=options, target_opset=TARGET_OPSET
    )
    if any(node.op_type == "TreeEnsemble" for node in graph.graph.node):
        for opset in graph.opset_import:
            if opset.domain == "ai.onnx.ml":
                opset.version = max(opset.version, TREE_ML_OPSET)
    return graph.SerializeToString()
