"""Read-only web dashboard: data, experiments, models and monitoring pages (server-rendered).

Names load on first use (PEP 562): ``mlfactory --help`` must not import FastAPI, Jinja2 and MLflow.
"""

from mlfactory._lazy import lazy_exports

_WHERE = {
    "DEFAULT_MLFLOW_URL": "_defaults",
    "create_dashboard_app": "_app",
    "artifact_dir": "_artifacts",
    "list_artifact_files": "_artifacts",
    "resolve_artifact": "_artifacts",
    "DriftPoint": "_queries",
    "Leaderboard": "_queries",
    "ModelOverview": "_queries",
    "data_status": "_queries",
    "drift_history": "_queries",
    "drift_report": "_queries",
    "experiment_names": "_queries",
    "leaderboard": "_queries",
    "models_overview": "_queries",
    "run_detail": "_queries",
    "run_dashboard": "_server",
    "line_chart": "_svg",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
