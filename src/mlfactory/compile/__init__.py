"""Compiled inference: a fitted pipeline as an ONNX graph in double precision, verified at
promotion within 1e-6 of scikit-learn, run by onnxruntime.

The registry calls :func:`compile_pipeline` when it promotes a version and records the verdict;
serving and batch scoring load what it produced. Nothing here imports the registry or serving.
"""

from mlfactory.compile._compile import (
    ONNX_ARTIFACT,
    ONNX_PATH,
    TOLERANCE,
    Compilation,
    compile_pipeline,
    make_session,
    onnx_artifact_path,
    onnx_feed,
    onnx_feed_from_columns,
)
from mlfactory.compile._convert import NUMERIC_TYPES, TARGET_OPSET

__all__ = [
    "NUMERIC_TYPES",
    "ONNX_ARTIFACT",
    "ONNX_PATH",
    "TARGET_OPSET",
    "TOLERANCE",
    "Compilation",
    "compile_pipeline",
    "make_session",
    "onnx_artifact_path",
    "onnx_feed",
    "onnx_feed_from_columns",
]
