"""The small vocabulary the hand-written converters share: constants, nodes, a double input."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Graph", "NotCompilable"]


class NotCompilable(Exception):
    """A step the compiler cannot translate exactly: the model is served by scikit-learn, and
    the reason (this message) is recorded with the version."""


class Graph:
    """Adds initializers and nodes to a skl2onnx converter's ``container`` under unique names."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope = scope
        self.container = container

    def const(self, name: str, value: Any, dtype: Any = None) -> str:
        from onnx import numpy_helper

        full = self.scope.get_unique_variable_name(name)
        array = np.asarray(value, dtype=dtype)
        if array.dtype.kind in "OUS":  # strings: skl2onnx would keep only a TensorProto's raw
            from onnx import TensorProto  # data, which a string tensor has not

            values = [str(v).encode() for v in array.ravel()]
            self.container.add_initializer(full, TensorProto.STRING, list(array.shape), values)
            return full
        tensor = numpy_helper.from_array(array, full)
        self.container.add_initializer(full, None, None, tensor)
        return full

    def node(self, op: str, inputs: list[str], name: str | None = None, **attrs: Any) -> str:
        out = self.scope.get_unique_variable_name(name or op.lower())
        self.container.add_node(op, inputs, [out], **attrs)
        return out

    def double_input(self, operator: Any) -> str:
        """The operator's inputs as one double matrix (a model fed straight from the columns
        has one input per column; each is cast to double where it is not)."""
        from onnx import TensorProto
        from skl2onnx.common.data_types import DoubleTensorType

        names = []
        for variable in operator.inputs:
            name = variable.full_name
            if not isinstance(variable.type, DoubleTensorType):
                name = self.node("Cast", [name], "as_double", to=TensorProto.DOUBLE)
            names.append(name)
        return names[0] if len(names) == 1 else self.node("Concat", names, "columns", axis=1)
