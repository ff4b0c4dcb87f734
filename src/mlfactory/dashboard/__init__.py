"""Read-only web dashboard: data, experiments, models and monitoring pages (server-rendered)."""

from mlfactory.dashboard._app import DEFAULT_MLFLOW_URL, create_dashboard_app
from mlfactory.dashboard._artifacts import artifact_dir, list_artifact_files, resolve_artifact
from mlfactory.dashboard._queries import (
    DriftPoint,
    Leaderboard,
    ModelOverview,
    data_status,
    drift_history,
    drift_report,
    experiment_names,
    leaderboard,
    models_overview,
    run_detail,
)
from mlfactory.dashboard._server import run_dashboard
from mlfactory.dashboard._svg import line_chart

__all__ = [
    "DEFAULT_MLFLOW_URL",
    "DriftPoint",
    "Leaderboard",
    "ModelOverview",
    "artifact_dir",
    "create_dashboard_app",
    "data_status",
    "drift_history",
    "drift_report",
    "experiment_names",
    "leaderboard",
    "line_chart",
    "list_artifact_files",
    "models_overview",
    "resolve_artifact",
    "run_dashboard",
    "run_detail",
]
