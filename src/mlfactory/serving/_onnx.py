"""Compiled inference: the pipeline as ONNX, verified against scikit-learn, run by onnxruntime.

:func:`compile_onnx` converts a pipeline with skl2onnx (one graph input per column, with the
column's type: 32-bit floats for numbers, booleans, strings) and checks onnxruntime's outputs
against scikit-learn's on held-out rows. The registry calls it at promotion and records the
verdict as version tags; :class:`OnnxPredictor` serves a verified graph. Anything that does not
convert or does not agree falls back to :class:`SklearnPredictor`, with the reason.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.logs import get_logger
from mlfactory.registry import InputColumn, LoadedModel
from mlfactory.serving._frame import Batch
from mlfactory.serving._predictor import ScoreResult

__all__ = [
    "ONNX_ARTIFACT",
    "ONNX_TOLERANCE",
    "OnnxCompilation",
    "OnnxPredictor",
    "build_predictor",
    "compile_onnx",
    "compile_version",
    "onnx_feed",
    "onnx_feed_from_columns",
]

logger = get_logger(__name__)

ONNX_TOLERANCE = 1e-4
"""Largest absolute difference from scikit-learn's probabilities (or values) accepted."""

_NUMERIC = {"double", "float", "long", "integer"}
_register_lock = threading.Lock()
_registered = False


@dataclass(frozen=True)
class OnnxCompilation:
    """The verdict of one conversion: ``status`` is ``ok`` or ``fallback: reason``."""

    status: str
    max_abs_diff: float | None
    model_bytes: bytes | None
    rows_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _is_cast(transformer: Any) -> bool:
    """The recipes' float cast: a ``StandardScaler`` that neither centres nor scales."""
    from sklearn.preprocessing import StandardScaler

    return (
        isinstance(transformer, StandardScaler)
        and not transformer.with_mean
        and not transformer.with_std
    )


def _register_converters() -> None:
    """Teach skl2onnx the recipes' float cast (booleans in, floats out) as an ONNX ``Cast``."""
    global _registered
    with _register_lock:
        if _registered:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx.common._apply_operation import apply_cast, apply_concat
        from skl2onnx.common.data_types import FloatTensorType
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
            operator.outputs[0].type = FloatTensorType([rows, width])

        def convert(scope: Any, operator: Any, container: Any) -> None:
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
                to=onnx_proto.TensorProto.FLOAT,
            )

        update_registered_converter(
            StandardScaler,
            "SklearnScaler",
            shape,
            convert,
            overwrite=True,
            options={"div": ["std", "div", "div_cast"]},
        )
        _registered = True


def _initial_types(inputs: Sequence[InputColumn]) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import BooleanTensorType, FloatTensorType, StringTensorType

    types = []
    for column in inputs:
        if column.type in _NUMERIC:
            types.append((column.name, FloatTensorType([None, 1])))
        elif column.type == "boolean":
            types.append((column.name, BooleanTensorType([None, 1])))
        elif column.type == "string":
            types.append((column.name, StringTensorType([None, 1])))
        else:
            raise ValueError(f"column {column.name!r} of type {column.type} has no ONNX input")
    return types


def onnx_feed(frame: pd.DataFrame, inputs: Sequence[InputColumn]) -> dict[str, np.ndarray] | None:
    """Numpy columns for the graph, or ``None`` when a boolean/string column holds nulls
    (ONNX tensors cannot say "missing" there: scikit-learn scores such a batch instead)."""
    feed: dict[str, np.ndarray] = {}
    for column in inputs:
        series = frame[column.name]
        if column.type in _NUMERIC:
            values = series.to_numpy(dtype="float32", na_value=np.nan)
        elif column.type == "boolean":
            if series.hasnans:
                return None
            values = series.to_numpy(dtype=bool)
        else:
            if series.hasnans:
                return None
            values = series.to_numpy(dtype=object)
        feed[column.name] = values.reshape(-1, 1)
    return feed


def onnx_feed_from_columns(
    columns: dict[str, list[Any]], inputs: Sequence[InputColumn]
) -> dict[str, np.ndarray] | None:
    """:func:`onnx_feed` straight from a request's typed columns, with no DataFrame between."""
    feed: dict[str, np.ndarray] = {}
    for column in inputs:
        values = columns[column.name]
        if column.type in _NUMERIC:
            array = np.array(values, dtype=np.float32)  # None becomes NaN
        elif any(value is None for value in values):
            return None
        elif column.type == "boolean":
            array = np.array(values, dtype=bool)
        else:
            array = np.array(values, dtype=object)
        feed[column.name] = array.reshape(-1, 1)
    return feed


def _session(model_bytes: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # requests are small; threads would fight the server's
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _final_step(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def compile_onnx(
    model: Any, inputs: Sequence[InputColumn], held_out: pd.DataFrame
) -> OnnxCompilation:
    """Convert ``model`` to ONNX and verify it on ``held_out`` rows; never raises."""
    try:
        from skl2onnx import convert_sklearn

        _register_converters()
        final = _final_step(model)
        options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
        graph = convert_sklearn(model, initial_types=_initial_types(inputs), options=options)
        model_bytes = graph.SerializeToString()
        session = _session(model_bytes)
    except Exception as exc:  # any converter gap: serve with scikit-learn
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return OnnxCompilation(f"fallback: conversion failed: {reason}", None, None)
    try:
        return _verify(model, final, inputs, held_out, session, model_bytes)
    except Exception as exc:  # e.g. held-out values the graph rejects: serve with scikit-learn
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return OnnxCompilation(f"fallback: verification failed: {reason}", None, None)


def _verify(
    model: Any,
    final: Any,
    inputs: Sequence[InputColumn],
    held_out: pd.DataFrame,
    session: Any,
    model_bytes: bytes,
) -> OnnxCompilation:
    """Score ``held_out`` with both and compare labels and probabilities (or values)."""
    frame = held_out[[c.name for c in inputs]].dropna(
        subset=[c.name for c in inputs if c.type not in _NUMERIC]
    )
    if frame.empty:
        return OnnxCompilation("fallback: no held-out rows to verify the ONNX graph on", None, None)
    outputs = session.run(None, onnx_feed(frame, inputs))
    with np.errstate(all="ignore"):
        expected_labels = np.asarray(model.predict(frame))
        if hasattr(final, "predict_proba") and len(outputs) > 1:
            diff = float(np.max(np.abs(outputs[1] - model.predict_proba(frame))))
            labels_agree = np.array_equal(outputs[0].ravel(), expected_labels.ravel())
        else:
            got = outputs[0].ravel().astype("float64")
            diff = float(np.max(np.abs(got - expected_labels.astype("float64"))))
            labels_agree = True
    if not labels_agree:
        return OnnxCompilation(
            "fallback: ONNX labels differ from scikit-learn's", diff, None, len(frame)
        )
    if not diff <= ONNX_TOLERANCE:
        return OnnxCompilation(
            f"fallback: max abs difference {diff:.3g} exceeds tolerance {ONNX_TOLERANCE:g}",
            diff,
            None,
            len(frame),
        )
    return OnnxCompilation("ok", diff, model_bytes, len(frame))


class OnnxPredictor:
    """Scores with onnxruntime; batches ONNX cannot represent go to scikit-learn."""

    kind = "onnx"

    def __init__(self, loaded: LoadedModel, model_bytes: bytes, fallback: Any) -> None:
        self.loaded = loaded
        self.reason = "verified ONNX graph (" + loaded.info.tags.get("onnx_max_abs_diff", "?")
        self.reason += " max abs difference from scikit-learn)"
        self._session = _session(model_bytes)
        self._fallback = fallback
        self.classes = fallback.classes
        self._proba = bool(loaded.classes) and len(self._session.get_outputs()) > 1

    def score(self, frame: pd.DataFrame) -> ScoreResult:
        feed = onnx_feed(frame, self.loaded.inputs)
        if feed is None:
            return self._fallback.score(frame)
        return self._run(feed)

    def score_batch(self, batch: Batch) -> ScoreResult:
        feed = onnx_feed_from_columns(batch.columns, self.loaded.inputs)
        if feed is None:
            return self._fallback.score(batch.frame)
        return self._run(feed)

    def _run(self, feed: dict[str, np.ndarray]) -> ScoreResult:
        start = time.perf_counter()
        outputs = self._session.run(None, feed)
        predictions = outputs[0].ravel()
        probabilities = outputs[1] if self._proba else None
        elapsed = (time.perf_counter() - start) * 1000.0
        return ScoreResult(predictions, probabilities, self.classes, elapsed)


ONNX_ARTIFACT = "onnx/model.onnx"  # where versions promoted before content addressing keep it


_ONNX_PATH = re.compile(r"onnx/(?:[0-9a-f]{16}/)?model\.onnx")


def onnx_artifact_path(sha256: str) -> str:
    """The run-relative path of the graph whose SHA-256 is ``sha256``."""
    return f"onnx/{sha256[:16]}/model.onnx"


def compile_version(settings: Any, client: Any, info: Any) -> dict[str, str]:
    """Compile a registered version to ONNX, verify it on the run's reference sample, log
    ``onnx/model.onnx`` beside the run's artifacts; the version tags to record (never raises)."""
    import hashlib
    import shutil
    import tempfile
    from pathlib import Path

    from mlfactory.registry import ModelRef, load_model

    work = Path(tempfile.mkdtemp(prefix="mlfactory-onnx-"))
    try:
        try:
            loaded = load_model(settings, ModelRef(info.name, version=info.version), cache_dir=work)
            sample = Path(client.download_artifacts(info.run_id, "reference_sample.parquet", work))
            held_out = pd.read_parquet(sample)
        except Exception as exc:  # pickled model, no reference sample, ...
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
            return {"onnx_status": f"fallback: cannot verify: {reason}"}
        missing = [c.name for c in loaded.inputs if c.name not in held_out.columns]
        if not loaded.inputs or missing:
            return {"onnx_status": "fallback: reference sample lacks model columns"}
        verdict = compile_onnx(loaded.model, loaded.inputs, held_out)
        tags = {"onnx_status": verdict.status}
        if verdict.max_abs_diff is not None:
            tags["onnx_max_abs_diff"] = f"{verdict.max_abs_diff:.3g}"
            tags["onnx_rows_checked"] = str(verdict.rows_checked)
        if verdict.ok and verdict.model_bytes is not None:
            digest = hashlib.sha256(verdict.model_bytes).hexdigest()
            # content-addressed: promoting the same run again never overwrites another
            # version's graph (which would break that version's recorded hash)
            artifact = onnx_artifact_path(digest)
            path = work / "model.onnx"
            path.write_bytes(verdict.model_bytes)
            try:
                client.log_artifact(info.run_id, str(path), artifact.rsplit("/", 1)[0])
            except Exception as exc:  # the artifact store refused: promote anyway, say why
                return {"onnx_status": f"fallback: cannot store {artifact}: {exc}"[:500]}
            tags["onnx_sha256"] = digest
            tags["onnx_artifact"] = artifact
            tags["onnx_tolerance"] = f"{ONNX_TOLERANCE:g}"
        logger.info("ONNX for %s version %s: %s", info.name, info.version, verdict.status)
        return tags
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_predictor(settings: Any, loaded: LoadedModel, *, onnx: bool = True) -> Any:
    """The verified ONNX predictor when the version has one, else scikit-learn with the reason."""
    import hashlib
    from pathlib import Path

    from mlfactory.serving._predictor import SklearnPredictor
    from mlfactory.tracking import open_tracking

    sklearn = SklearnPredictor(loaded)
    status = loaded.info.tags.get("onnx_status")
    if not onnx:
        reason = "ONNX disabled (--no-onnx)"
    elif status is None:
        reason = "no ONNX graph recorded for this version (promoted without compile_onnx)"
    elif status != "ok":
        reason = status
    else:
        try:
            client = open_tracking(settings)
            target = loaded.path.parent / "onnx-download"
            target.mkdir(parents=True, exist_ok=True)
            artifact = loaded.info.tags.get("onnx_artifact") or ONNX_ARTIFACT
            if not _ONNX_PATH.fullmatch(artifact):
                raise ValueError(f"unexpected ONNX artifact path {artifact!r}")
            path = Path(client.download_artifacts(loaded.info.run_id, artifact, str(target)))
            model_bytes = path.read_bytes()
            if hashlib.sha256(model_bytes).hexdigest() != loaded.info.tags.get("onnx_sha256"):
                reason = f"fallback: {artifact} does not match its recorded SHA-256"
            else:
                predictor = OnnxPredictor(loaded, model_bytes, sklearn)
                logger.info("serving %s with ONNX", loaded.ref)
                return predictor
        except Exception as exc:
            reason = f"fallback: cannot load the ONNX graph: {str(exc).strip()[:200]}"
    sklearn.reason = reason
    logger.info("serving %s with scikit-learn: %s", loaded.ref, reason)
    return sklearn
