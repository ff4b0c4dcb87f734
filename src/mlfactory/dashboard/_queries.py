"""What the dashboard pages show, read from the stores (read-only; plain data out)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlfactory.dashboard._artifacts import artifact_dir, list_artifact_files, resolve_artifact
from mlfactory.data import BronzeStore, StoreStatus
from mlfactory.db import readonly_engine
from mlfactory.exceptions import DataError, ModelNotFound
from mlfactory.logs import get_logger
from mlfactory.registry import VersionInfo, describe_model, list_models
from mlfactory.settings import Settings
from mlfactory.tracking._queries import get_run, list_runs

__all__ = [
    "DriftPoint",
    "Leaderboard",
    "ModelOverview",
    "data_status",
    "drift_history",
    "drift_report",
    "experiment_names",
    "leaderboard",
    "models_overview",
    "promotion_decisions",
    "run_detail",
]

logger = get_logger(__name__)
EXPLAIN_REPORT = "explain/report.html"
EVALUATION_IMAGE = "evaluation.png"
LEADERBOARD_ROWS = 500
DEFAULT_SORT = "test_roc_auc"
FIXED_COLUMNS = ("name", "role", "status", "started", "seconds")


def data_status(settings: Settings) -> StoreStatus:
    """Tickers, date ranges, partitions, rows and last ingest of the bronze store."""
    return BronzeStore.from_settings(settings).status()


def experiment_names(client: MlflowClient) -> list[str]:
    """Experiments in the tracking store, by name (MLflow's empty 'Default' left out)."""
    names = sorted(e.name for e in client.search_experiments())
    return [n for n in names if n != "Default" or _has_runs(client, n)]


def _has_runs(client: MlflowClient, name: str) -> bool:
    found = client.get_experiment_by_name(name)
    return found is not None and bool(client.search_runs([found.experiment_id], max_results=1))


@dataclass
class Leaderboard:
    """Runs of one experiment as rows, with the columns one may sort by."""

    experiment: str
    columns: list[str]
    metrics: list[str]
    rows: list[dict[str, Any]]
    sort: str | None = None
    desc: bool = True


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def leaderboard(
    client: MlflowClient, experiment: str, sort: str | None = None, desc: bool = True
) -> Leaderboard:
    """Top-level runs of ``experiment`` (parents, cells, single runs), sorted by ``sort``.

    Without ``sort`` the first test metric orders the table, best first. Unsorted values (runs
    without that metric) go last. An unknown column is a :class:`DataError` listing the valid ones.
    """
    frame = list_runs(client, experiment, max_results=LEADERBOARD_ROWS)
    metrics = sorted(c for c in frame.columns if c.startswith("test_"))
    columns = [c for c in FIXED_COLUMNS if c in frame.columns] + metrics
    if sort is None and metrics:
        sort, desc = DEFAULT_SORT if DEFAULT_SORT in metrics else metrics[0], True
    if sort is not None:
        if sort not in columns:
            raise DataError(
                f"cannot sort by {sort!r}: expected one of {', '.join(columns) or '(no columns)'}"
            )
        frame = frame.sort_values(sort, ascending=not desc, na_position="last", kind="stable")
    rows = [
        {key: _clean(value) for key, value in record.items()}
        for record in frame.to_dict(orient="records")
    ]
    return Leaderboard(experiment, columns, metrics, rows, sort, desc)


def run_detail(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """A run's record plus its experiment name, artifact files and the images/reports it has."""
    record = get_run(client, run_id)
    experiment = client.get_experiment(record["experiment_id"])
    files = list_artifact_files(record["artifact_uri"])
    record.update(
        experiment=experiment.name,
        files=files,
        local_artifacts=artifact_dir(record["artifact_uri"]) is not None,
        evaluation=EVALUATION_IMAGE if EVALUATION_IMAGE in files else None,
        explain_report=EXPLAIN_REPORT if EXPLAIN_REPORT in files else None,
        roles=_column_roles(record["artifact_uri"], files),
    )
    return record


ROLES_ARTIFACT = "spec/roles.json"
MAX_ROLES_BYTES = 1 << 20


def _column_roles(artifact_uri: str, files: list[str]) -> list[dict[str, str]]:
    """The user table's column decisions the run logged (``spec/roles.json``), if any.

    The file is data anyone with MLflow access could have written: only a list of
    ``{column, role, reason}`` strings is shown, and nothing of it is trusted beyond text.
    """
    if ROLES_ARTIFACT not in files:
        return []
    try:
        path = resolve_artifact(artifact_uri, ROLES_ARTIFACT)
        if path.stat().st_size > MAX_ROLES_BYTES:
            return []
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (ModelNotFound, OSError, ValueError):
        return []
    if not isinstance(rows, list):
        return []
    keys = ("column", "role", "reason")
    return [
        {key: str(row.get(key, "")) for key in keys} for row in rows[:2000] if isinstance(row, dict)
    ]


@dataclass
class ModelOverview:
    """One registered model: the summary row and every version (newest first)."""

    name: str
    summary: dict[str, Any]
    versions: list[VersionInfo]
    metrics: list[str]
    explain: dict[str, bool] = field(default_factory=dict)  # version -> has explain report
    decisions: list[dict[str, Any]] = field(default_factory=list)  # the gate's, newest first


def _has_explain_report(client: MlflowClient, run_id: str) -> bool:
    if not run_id:
        return False
    try:
        folder = artifact_dir(client.get_run(run_id).info.artifact_uri)
    except MlflowException:
        return False
    return folder is not None and (folder / EXPLAIN_REPORT).is_file()


def models_overview(settings: Settings, client: MlflowClient) -> list[ModelOverview]:
    """Registered models with versions, aliases, test metrics and explain-report availability."""
    models = []
    for summary in list_models(settings):
        versions = describe_model(settings, summary["name"])
        metrics = sorted({m for v in versions for m in v.metrics})
        explain = {v.version: _has_explain_report(client, v.run_id) for v in versions}
        decisions = promotion_decisions(settings, summary["name"])
        models.append(
            ModelOverview(summary["name"], summary, versions, metrics, explain, decisions)
        )
    return models


def promotion_decisions(settings: Settings, model: str) -> list[dict[str, Any]]:
    """The promotion gate's decisions about ``model``, newest first, on a read-only engine.

    Empty when the database or the ``promotion_decisions`` table does not exist yet (an older
    schema): the dashboard never creates nor migrates it.
    """
    from mlfactory.line import read_decisions

    engine = readonly_engine(settings.database_url)
    if engine is None or not sa.inspect(engine).has_table("promotion_decisions"):
        return []
    return read_decisions(engine, model)


@dataclass
class DriftPoint:
    """One stored drift report, as the monitoring page shows it."""

    id: int
    created_at: datetime
    model: str
    reference: str
    current: str
    drifted: bool
    share_drifted: float
    n_features: int
    n_drifted: int
    n_current: int
    window_start: Any = None
    window_end: Any = None
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def drift_share_threshold(self) -> float | None:
        value = (self.document.get("config") or {}).get("drift_share")
        return float(value) if value is not None else None

    @property
    def features(self) -> list[dict[str, Any]]:
        return list(self.document.get("features") or [])


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return pd.Timestamp(value).to_pydatetime()


def drift_history(settings: Settings) -> dict[str, list[DriftPoint]]:
    """Drift reports per model, oldest first; empty when the table does not exist yet.

    The table is reflected, not created: the dashboard never writes, and columns it does not know
    are ignored (missing optional ones read as empty).
    """
    engine = readonly_engine(settings.database_url)  # never creates the file nor writes
    if engine is None or not sa.inspect(engine).has_table("drift_reports"):
        return {}
    table = sa.Table("drift_reports", sa.MetaData(), autoload_with=engine)
    needed = {"id", "created_at", "share_drifted"}
    if not needed <= set(table.c.keys()):
        raise DataError(
            f"table drift_reports lacks columns {', '.join(sorted(needed - set(table.c.keys())))}"
        )
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    history: dict[str, list[DriftPoint]] = {}
    for row in rows:
        document = row.get("report") or {}
        if isinstance(document, str):
            document = json.loads(document)
        point = DriftPoint(
            id=int(row["id"]),
            created_at=_as_datetime(row["created_at"]),
            model=row.get("model") or "(no model)",
            reference=row.get("reference") or "",
            current=row.get("current") or "",
            drifted=bool(row.get("drifted")),
            share_drifted=float(row["share_drifted"]),
            n_features=int(row.get("n_features") or 0),
            n_drifted=int(row.get("n_drifted") or 0),
            n_current=int(row.get("n_current") or 0),
            window_start=row.get("window_start"),
            window_end=row.get("window_end"),
            document=document,
        )
        history.setdefault(point.model, []).append(point)
    return history


def drift_report(settings: Settings, report_id: int) -> DriftPoint:
    """One stored drift report by id (:class:`ModelNotFound` when absent)."""
    for points in drift_history(settings).values():
        for point in points:
            if point.id == report_id:
                return point
    raise ModelNotFound(f"drift report {report_id} not found in drift_reports")
