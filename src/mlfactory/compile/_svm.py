"""``SVR`` and ``SVC`` as ONNX graphs in double precision (onnxruntime's
``SVMRegressor``/``SVMClassifier`` compute in float).

The decision value is libsvm's: ``sum(dual_coef * K(x, sv)) + intercept`` (the RBF kernel's
squared distances as one ``MatMul``, expanded, where libsvm sums squared differences: rounding
apart, the same), one per pair of classes for ``SVC`` (one-vs-one: the pair (i, j) weighs class
i's support vectors by ``dual_coef[j - 1]`` and class j's by ``dual_coef[i]``).
A two-class ``SVC`` predicts the first class where the decision value is positive; with
more classes each pair votes (i where its value is positive, else j) and the first class with
the most votes wins, as libsvm's ``svm_predict``. With ``probability=True`` the probabilities
are libsvm's: Platt's sigmoid of each pair's decision value (clipped to [1e-7, 1 - 1e-7]), then
``multiclass_probability``'s coupling iterations: unrolled for two classes (at most two
iterations, same stopping rule), an ONNX ``Loop`` for more (each row stops at its own
iteration, as libsvm does row by row; sums in libsvm's order, so the stopping test sees the
same numbers).
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
    total = node("MatMul", [k, const("dual_coef", _pair_weights(model))])
    intercept = const("intercept", np.asarray(model._intercept_, dtype=np.float64))
    return const, node, node("Add", [total, intercept])


def _pair_weights(model: Any) -> np.ndarray:
    """(support vectors, pairs): column p weighs every support vector for pair p (zero for
    the classes not in it); one column for ``SVR`` and two-class ``SVC``."""
    dual = np.asarray(model._dual_coef_, dtype=np.float64)
    classes = getattr(model, "classes_", None)
    if classes is None or len(classes) <= 2:
        return dual.T.copy()
    starts = np.concatenate([[0], np.cumsum(model.n_support_)])
    columns = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            column = np.zeros(dual.shape[1])
            own, other = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            column[own], column[other] = dual[j - 1, own], dual[i, other]
            columns.append(column)
    return np.stack(columns, axis=1)


def _convert(scope: Any, operator: Any, container: Any) -> None:
    _, _, decision = _decision(scope, operator, container)
    container.add_node("Identity", [decision], [operator.outputs[0].full_name])


def _classifier_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType
    from skl2onnx.shape_calculators.support_vector_machines import (
        calculate_sklearn_svm_output_shapes,
    )

    classes = np.asarray(operator.raw_operator.classes_)
    if len(classes) < 2:
        calculate_sklearn_svm_output_shapes(operator)
        return
    rows = operator.inputs[0].get_first_dimension()
    label = StringTensorType if classes.dtype.kind in "OUS" else Int64TensorType
    operator.outputs[0].type = label([rows])
    if len(operator.outputs) > 1:
        operator.outputs[1].type = DoubleTensorType([rows, len(classes)])


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    model = operator.raw_operator
    classes = np.asarray(model.classes_)
    if classes.dtype.kind not in "iubOUS":
        raise NotCompilable(f"class labels of dtype {classes.dtype}")
    if len(classes) > 2:
        _convert_multiclass(scope, operator, container)
        return
    const, node, decision = _decision(scope, operator, container)
    flat = node("Flatten", [decision], axis=0)
    dec = node("Squeeze", [flat, _int64(scope, container, [0])])  # (n,)
    zero = const("zero", np.array(0.0))
    first = node("Cast", [node("Greater", [dec, zero])], to=TensorProto.INT64)
    index = node("Sub", [_int64(scope, container, 1), first])  # dec > 0: class 0
    labels = Graph(scope, container).const("classes", _label_table(classes))
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


def _label_table(classes: np.ndarray) -> np.ndarray:
    return classes.astype(np.int64) if classes.dtype.kind in "iub" else classes.astype(object)


def _convert_multiclass(scope: Any, operator: Any, container: Any) -> None:
    """One-vs-one votes and libsvm's coupled probabilities for three or more classes."""
    from onnx import TensorProto, numpy_helper

    model = operator.raw_operator
    classes = np.asarray(model.classes_)
    n_classes = len(classes)
    if model.break_ties and model.decision_function_shape == "ovr":
        raise NotCompilable("SVC(break_ties=True) is not compiled")
    if len(operator.outputs) > 1 and model._probA.size == 0:
        raise NotCompilable("SVC(probability=False) is not compiled")
    const, node, decision = _decision(scope, operator, container)  # (n, pairs)
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    to_i, to_j = np.zeros((len(pairs), n_classes)), np.zeros((len(pairs), n_classes))
    for p, (i, j) in enumerate(pairs):
        to_i[p, i], to_j[p, j] = 1.0, 1.0
    positive = node("Cast", [node("Greater", [decision, const("zero", np.array(0.0))])],
                    to=TensorProto.DOUBLE)  # fmt: skip
    negative = node("Sub", [const("one", np.array(1.0)), positive])
    votes = node("Add", [node("MatMul", [positive, const("to_i", to_i)]),
                         node("MatMul", [negative, const("to_j", to_j)])])  # fmt: skip
    best = node("ArgMax", [votes], axis=1, keepdims=0)  # the first class with the most votes
    labels = Graph(scope, container).const("classes", _label_table(classes))
    container.add_node("Gather", [labels, best], [operator.outputs[0].full_name], axis=0)
    if len(operator.outputs) < 2:
        return

    # pairwise probabilities r[i][j] (and r[j][i] = 1 - r[i][j]), one (n,) vector each
    f = node("Add", [node("Mul", [decision, const("A", np.asarray(model._probA, np.float64))]),
                     const("B", np.asarray(model._probB, np.float64))])  # fmt: skip
    zero, one = const("zero_p", np.array(0.0)), const("one_p", np.array(1.0))
    e_neg = node("Exp", [node("Neg", [f])])
    upper = node("Div", [e_neg, node("Add", [one, e_neg])])
    lower = node("Div", [one, node("Add", [one, node("Exp", [f])])])
    pairwise = node("Where", [node("GreaterOrEqual", [f, zero]), upper, lower])
    pairwise = node("Clip", [pairwise, const("lo", np.array(1e-7)),
                             const("hi", np.array(1 - 1e-7))])  # fmt: skip
    r: dict[tuple[int, int], str] = {}
    for p, (i, j) in enumerate(pairs):
        r[i, j] = node("Gather", [pairwise, _int64(scope, container, p)], axis=1)
        r[j, i] = node("Sub", [one, r[i, j]])
    # Q as multiclass_probability builds it, sums in its order
    q: dict[tuple[int, int], str] = {}
    for t in range(n_classes):
        diagonal = None
        for j in range(n_classes):
            if j == t:
                continue
            square = node("Mul", [r[j, t], r[j, t]])
            diagonal = square if diagonal is None else node("Add", [diagonal, square])
            if j > t:
                q[t, j] = q[j, t] = node("Neg", [node("Mul", [r[j, t], r[t, j]])])
        q[t, t] = diagonal
    start = node("Add", [node("Mul", [node("Gather", [decision, _int64(scope, container, 0)],
                                           axis=1), zero]),
                         const("uniform", np.array(1.0 / n_classes))])  # fmt: skip
    active = node("Cast", [node("Add", [start, one])], to=TensorProto.BOOL)  # all true
    entries = sorted(q)  # fixed order of the Q tensors carried through the loop
    q_names = [q[key] for key in entries]
    carried = [start] * n_classes + [active] + q_names
    body = _coupling_body(scope, n_classes, entries)
    outs = [scope.get_unique_variable_name("p_final") for _ in carried]
    trips = _int64(scope, container, max(100, n_classes))
    go = scope.get_unique_variable_name("go")
    container.add_initializer(go, None, None, numpy_helper.from_array(np.array(True), go))
    container.add_node("Loop", [trips, go, *carried], outs, body=body)
    columns = [node("Unsqueeze", [outs[t], _int64(scope, container, [1])])
               for t in range(n_classes)]  # fmt: skip
    container.add_node("Concat", columns, [operator.outputs[1].full_name], axis=1)


def _coupling_body(scope: Any, n_classes: int, entries: list[tuple[int, int]]) -> Any:
    """One iteration of libsvm's ``multiclass_probability`` for every row: the stopping test
    (a row whose error is below ``0.005 / k`` stops for good), then the k sequential updates."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    initializers: list[Any] = []

    def name(base: str) -> str:
        return scope.get_unique_variable_name("loop_" + base)

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], name=name("n"), **attrs))
        return out

    def const(base: str, value: Any) -> str:
        full = name(base)
        initializers.append(numpy_helper.from_array(np.asarray(value), full))
        return full

    iteration, cond = name("iteration"), name("cond")
    p = [name(f"p{t}") for t in range(n_classes)]
    active = name("active")
    q_in = [name("q") for _ in entries]
    q = dict(zip(entries, q_in, strict=True))
    eps = const("eps", np.array(0.005 / n_classes))
    one = const("one", np.array(1.0))
    two = const("two", np.array(2.0))

    def products(t: int, values: list[str]) -> str:
        total = None
        for j in range(n_classes):
            term = node("Mul", [q[t, j], values[j]])
            total = term if total is None else node("Add", [total, term])
        return total

    qp = [products(t, p) for t in range(n_classes)]
    pqp = None
    for t in range(n_classes):
        term = node("Mul", [p[t], qp[t]])
        pqp = term if pqp is None else node("Add", [pqp, term])
    error = node("Max", [node("Abs", [node("Sub", [qp[t], pqp])]) for t in range(n_classes)])
    still = node("And", [active, node("Not", [node("Less", [error, eps])])])
    new_p, new_qp, new_pqp = list(p), list(qp), pqp
    for t in range(n_classes):
        diff = node("Div", [node("Sub", [new_pqp, new_qp[t]]), q[t, t]])
        new_p[t] = node("Add", [new_p[t], diff])
        grown = node("Add", [one, diff])
        inner = node("Add", [node("Mul", [diff, q[t, t]]), node("Mul", [new_qp[t], two])])
        new_pqp = node(
            "Div", [node("Div", [node("Add", [new_pqp, node("Mul", [diff, inner])]), grown]), grown]
        )
        new_qp = [
            node("Div", [node("Add", [new_qp[j], node("Mul", [diff, q[t, j]])]), grown])
            for j in range(n_classes)
        ]
        new_p = [node("Div", [new_p[j], grown]) for j in range(n_classes)]
    p_out = [node("Where", [still, new_p[t], p[t]]) for t in range(n_classes)]
    axis = const("axis", np.array([0], dtype=np.int64))
    running = node("ReduceSum", [node("Cast", [still], to=TensorProto.DOUBLE), axis], keepdims=0)
    cond_out = node("Greater", [running, const("zero", np.array(0.0))])
    q_out = [node("Identity", [value]) for value in q_in]

    def tensor(value: str, kind: int, shape: Any = None) -> Any:
        return helper.make_tensor_value_info(value, kind, shape)

    double, boolean = TensorProto.DOUBLE, TensorProto.BOOL
    inputs = [tensor(iteration, TensorProto.INT64, []), tensor(cond, boolean, [])]
    inputs += [tensor(v, double, [None]) for v in p] + [tensor(active, boolean, [None])]
    inputs += [tensor(v, double, [None]) for v in q_in]
    outputs = [tensor(cond_out, boolean, [])]
    outputs += [tensor(v, double, [None]) for v in p_out] + [tensor(still, boolean, [None])]
    outputs += [tensor(v, double, [None]) for v in q_out]
    return helper.make_graph(nodes, name("coupling"), inputs, outputs, initializers)


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
