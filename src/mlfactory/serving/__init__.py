"""Online prediction service: FastAPI app, MLflow-compatible scoring, metrics, prediction log."""

from mlfactory.serving._app import create_app
from mlfactory.serving._background import BackgroundServer, free_port
from mlfactory.serving._errors import PayloadError, ReloadConflict, ServiceNotReady
from mlfactory.serving._frame import Batch, build_frame
from mlfactory.serving._metrics import ServiceMetrics
from mlfactory.serving._predictor import Predictor, ScoreResult, SklearnPredictor
from mlfactory.serving._predlog import LoggedRequest, PredictionLogWriter
from mlfactory.serving._server import check_bind, run_server
from mlfactory.serving._service import ModelService, ServeOptions

__all__ = [
    "BackgroundServer",
    "Batch",
    "LoggedRequest",
    "ModelService",
    "PayloadError",
    "PredictionLogWriter",
    "Predictor",
    "ReloadConflict",
    "ScoreResult",
    "ServeOptions",
    "ServiceMetrics",
    "ServiceNotReady",
    "SklearnPredictor",
    "build_frame",
    "check_bind",
    "create_app",
    "free_port",
    "run_server",
]
