"""Read runs and registered models from MLflow's tables with SQLAlchemy Core, without MLflow.

Importing MLflow's client costs 1.5-2 s; ``runs list/show/compare`` and ``models list/show``
only read a few rows (issue #21). :func:`sql_reader` gives a read-only engine when the store is a
SQLite or PostgreSQL database at the schema recorded in ``resources/mlflow_schema.json`` *and*
that snapshot was taken of the installed MLflow; otherwise ``None``, and callers ask MLflow's
client as before. The readers reproduce what the client answers: only active experiments and
runs, MLflow's order (start time descending, then run id), latest metrics with NaN, the default
workspace, prompts excluded from the registry's searches, versions deleted internally left out.
``MLFACTORY_SQL_READERS=0`` forces the MLflow client (tests compare both paths with it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mlfactory.exceptions import ModelNotFound
from mlfactory.settings import Settings, mask_secrets

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "SQL_READERS_VARIABLE",
    "VersionRow",
    "compare_records",
    "describe_model_sql",
    "get_run_sql",
    "list_models_sql",
    "list_runs_sql",
    "metric_order",
    "sql_reader",
]

SQL_READERS_VARIABLE = "MLFACTORY_SQL_READERS"
_WORKSPACE = "default"  # MLflow's DEFAULT_WORKSPACE_NAME: a single-tenant store's only one
_PROMPT_TAG = "mlflow.prompt.is_prompt"  # prompts are registered models MLflow's searches hide
_DELETED_INTERNAL = "Deleted_Internal"  # a version being deleted: never shown by MLflow
_TEMP_ARTIFACT_PREFIX = ".artifact.uploading."  # MLflow's local repository hides these
_MODELS_PAGE = 100  # search_registered_models' default max_results
_IN_CHUNK = 500  # ids per IN (...) clause


def sql_reader(settings: Settings) -> Engine | None:
    """A read-only engine on the tracking store when it can be read without MLflow, else None.

    Raises what ``open_tracking(read_only=True)`` raises on a missing, empty or unready store.
    """
    from mlfactory.db import readonly_engine
    from mlfactory.tracking._readonly import (
        MLFLOW_SCHEMA_SNAPSHOT,
        _snapshot_expectations,
        tracking_state,
    )

    tracking_state(settings).raise_unless_ready()
    if os.environ.get(SQL_READERS_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if make_url(settings.database_url).get_backend_name() not in ("sqlite", "postgresql"):
        return None
    if _snapshot_expectations(MLFLOW_SCHEMA_SNAPSHOT) is None:  # another MLflow: it answers
        return None
    return readonly_engine(settings.database_url)


_FIRST_METRICS = ("test_roc_auc", "test_accuracy", "test_f1", "test_r2", "test_rmse")


def metric_order(name: str) -> tuple[int, str]:
    """The order of a run's metrics in lists: the ones people look for first, then the others
    alphabetically (MLflow's own order is the store's row order, unspecified on PostgreSQL)."""
    first = _FIRST_METRICS
    return (first.index(name) if name in first else len(first), name)


def _time(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _workspace(connection: Connection, table: str, alias: str | None = None) -> str:
    """`` AND <table>.workspace = :workspace`` when the table has MLflow's workspace column."""
    if "workspace" not in {c["name"] for c in sa.inspect(connection).get_columns(table)}:
        return ""
    return f" AND {alias or table}.workspace = :workspace"


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


def _key_values(
    connection: Connection, table: str, value: str, ids: list[str]
) -> dict[str, dict[str, Any]]:
    """``{run_uuid: {key: value}}`` of ``table`` (tags, params, latest_metrics) for ``ids``."""
    found: dict[str, dict[str, Any]] = {run_id: {} for run_id in ids}
    for chunk in _chunks(ids):
        query = sa.text(
            f"SELECT run_uuid, key, {value} FROM {table} WHERE run_uuid IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        for run_id, key, item in connection.execute(query, {"ids": chunk}):
            found[run_id][key] = item
    return found


def _metrics(connection: Connection, ids: list[str]) -> dict[str, dict[str, float]]:
    """Each run's latest metrics, as MLflow reads them (``is_nan`` rows are NaN)."""
    found: dict[str, dict[str, float]] = {run_id: {} for run_id in ids}
    for chunk in _chunks(ids):
        query = sa.text(
            "SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        for run_id, key, value, is_nan in connection.execute(query, {"ids": chunk}):
            found[run_id][key] = float("nan") if is_nan else float(value)
    return found


def _timeout(stale_timeout: float | None) -> float:
    from mlfactory.settings import get_settings

    return get_settings().stale_run_timeout if stale_timeout is None else stale_timeout


def list_runs_sql(
    engine: Engine,
    experiment: str | None = None,
    max_results: int = 50,
    include_children: bool = False,
    stale_timeout: float | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``tracking._queries.list_runs`` (one dict per run), read with SQL."""
    from mlfactory.tracking._owner import staleness

    timeout = _timeout(stale_timeout)
    params = {"workspace": _WORKSPACE}
    with engine.connect() as connection:
        where = _workspace(connection, "experiments")
        if experiment is not None:
            found = connection.execute(
                sa.text(f"SELECT experiment_id, name FROM experiments WHERE name = :name{where}"),
                {**params, "name": experiment},
            ).all()
            if not found:
                names = sorted(
                    str(r[0])
                    for r in connection.execute(
                        sa.text(
                            f"SELECT name FROM experiments WHERE lifecycle_stage = 'active'{where}"
                        ),
                        params,
                    )
                )
                raise ModelNotFound(
                    f"experiment {experiment!r} not found; known: {', '.join(names) or '(none)'}"
                )
        else:
            found = connection.execute(
                sa.text(
                    f"SELECT experiment_id, name FROM experiments "
                    f"WHERE lifecycle_stage = 'active'{where}"
                ),
                params,
            ).all()
        names = {str(r[0]): r[1] for r in found}
        if not names:
            return []
        query = sa.text(
            "SELECT run_uuid, name, status, start_time, end_time, experiment_id FROM runs "
            "WHERE experiment_id IN :experiments AND lifecycle_stage = 'active' "
            "ORDER BY start_time DESC, run_uuid LIMIT :limit"
        ).bindparams(sa.bindparam("experiments", expanding=True))
        runs = connection.execute(
            query, {"experiments": [int(e) for e in names], "limit": max_results * 20}
        ).all()
        tags = _key_values(connection, "tags", "value", [r[0] for r in runs])
        if not include_children:
            runs = [r for r in runs if tags[r[0]].get("mlfactory.role") != "candidate"]
        runs = runs[:max_results]
        metrics = _metrics(connection, [r[0] for r in runs])
    rows = []
    for run_id, name, status, start, end, experiment_id in runs:
        stale = staleness(status, tags[run_id], timeout)
        rows.append(
            {
                "run_id": run_id,
                "experiment": names.get(str(experiment_id), str(experiment_id)),
                "name": name,
                "role": tags[run_id].get("mlfactory.role", ""),
                "status": f"{status} (stale)" if stale else status,
                "stale": stale or "",
                "started": _time(start),
                "seconds": (end - start) / 1000 if end else None,
                **{
                    k: metrics[run_id][k]
                    for k in sorted(metrics[run_id], key=metric_order)
                    if k.startswith("test_")
                },
            }
        )
    return rows


def _artifacts(artifact_uri: str) -> list[str] | None:
    """The top-level artifact paths as MLflow's local repository lists them; None when the
    artifacts are not on a local file system (MLflow's client lists them)."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file") or (parsed.scheme == "file" and parsed.netloc):
        return None
    folder = Path(unquote(parsed.path) if parsed.scheme else artifact_uri)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(_TEMP_ARTIFACT_PREFIX))


def get_run_sql(
    engine: Engine, run_id: str, stale_timeout: float | None = None
) -> dict[str, Any] | None:
    """The record of ``tracking._queries.get_run``, read with SQL (None: artifacts are remote
    and only MLflow's client can list them)."""
    from mlfactory.tracking._owner import staleness

    with engine.connect() as connection:
        where = _workspace(connection, "experiments", "e")
        found = connection.execute(
            sa.text(
                "SELECT r.run_uuid, r.name, r.experiment_id, r.status, r.start_time, r.end_time, "
                "r.artifact_uri FROM runs r JOIN experiments e "
                f"ON e.experiment_id = r.experiment_id WHERE r.run_uuid = :run_id{where}"
            ),
            {"run_id": run_id, "workspace": _WORKSPACE},
        ).first()
        if found is None:
            raise ModelNotFound(f"run {run_id!r} not found in the tracking store")
        artifacts = _artifacts(found.artifact_uri or "")
        if artifacts is None:
            return None
        tags = _key_values(connection, "tags", "value", [run_id])[run_id]
        params = _key_values(connection, "params", "value", [run_id])[run_id]
        metrics = _metrics(connection, [run_id])[run_id]
    stale = staleness(found.status, tags, _timeout(stale_timeout))
    return {
        "run_id": found.run_uuid,
        "name": found.name,
        "experiment_id": str(found.experiment_id),
        "status": f"{found.status} (stale: {stale})" if stale else found.status,
        "stale": stale or "",
        "started": _time(found.start_time),
        "ended": _time(found.end_time),
        "artifact_uri": found.artifact_uri,
        "params": mask_secrets(dict(sorted(params.items()))),
        "metrics": dict(sorted(metrics.items())),
        "tags": mask_secrets(
            {k: v for k, v in sorted(tags.items()) if not k.startswith("mlflow.")}
        ),
        "artifacts": artifacts,
    }


def compare_records(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Params and metrics of several run records side by side, sorted by (kind, key): one
    ``{"kind", "key", "differs", "values": [one per run]}`` per key; a missing value is None.

    ``differs`` is what ``_queries.compare_runs`` computes with pandas: the values compared as
    text, missing ones and NaN left out (a key only one run has does not differ)."""
    keys = sorted(
        {(kind, key) for record in records.values() for kind in ("params", "metrics")
         for key in record[kind]}
    )  # fmt: skip
    rows = []
    for kind, key in keys:
        values = [record[kind].get(key) for record in records.values()]
        shown = {str(v) for v in values if v is not None and v == v}  # v != v: NaN
        rows.append({"kind": kind, "key": key, "differs": len(shown) > 1, "values": values})
    return rows


@dataclass
class VersionRow:
    """One model version as ``registry.VersionInfo`` has it (same fields, same order)."""

    name: str
    version: str
    run_id: str
    source: str
    aliases: list[str]
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    created: int = 0


def _as_metric(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _prompt_names(connection: Connection, names: list[str]) -> set[str]:
    where = _workspace(connection, "registered_model_tags")
    rows = connection.execute(
        sa.text(
            "SELECT name FROM registered_model_tags WHERE key = :key AND value = 'true'" + where
        ),
        {"key": _PROMPT_TAG, "workspace": _WORKSPACE},
    )
    return {r[0] for r in rows} & set(names)


def _versions(connection: Connection, name: str) -> list[tuple[Any, ...]]:
    where = _workspace(connection, "model_versions")
    return connection.execute(
        sa.text(
            "SELECT version, run_id, source, creation_time FROM model_versions "
            f"WHERE name = :name AND current_stage != :deleted{where}"
        ),
        {"name": name, "deleted": _DELETED_INTERNAL, "workspace": _WORKSPACE},
    ).all()


def _aliases(connection: Connection, name: str) -> dict[str, str]:
    where = _workspace(connection, "registered_model_aliases")
    rows = connection.execute(
        sa.text(f"SELECT alias, version FROM registered_model_aliases WHERE name = :name{where}"),
        {"name": name, "workspace": _WORKSPACE},
    )
    return {alias: str(version) for alias, version in rows}


def list_models_sql(engine: Engine) -> list[dict[str, Any]]:
    """The rows of ``registry.list_models``, read with SQL."""
    with engine.connect() as connection:
        where = _workspace(connection, "registered_models")
        names = [
            r[0]
            for r in connection.execute(
                sa.text(f"SELECT name FROM registered_models WHERE 1 = 1{where} ORDER BY name"),
                {"workspace": _WORKSPACE},
            )
        ]
        prompts = _prompt_names(connection, names)
        names = [n for n in names if n not in prompts][:_MODELS_PAGE]
        rows = []
        for name in names:
            versions = _versions(connection, name)
            aliases = _aliases(connection, name)
            rows.append(
                {
                    "name": name,
                    "versions": len(versions),
                    "latest": max((int(v[0]) for v in versions), default=0),
                    "aliases": ", ".join(f"{a}->v{v}" for a, v in sorted(aliases.items())),
                }
            )
    return rows


def describe_model_sql(engine: Engine, name: str) -> list[VersionRow]:
    """The versions ``registry.describe_model`` gives, newest first, read with SQL."""
    with engine.connect() as connection:
        where = _workspace(connection, "registered_models")
        params = {"workspace": _WORKSPACE}
        exists = connection.execute(
            sa.text(f"SELECT name FROM registered_models WHERE name = :name{where}"),
            {**params, "name": name},
        ).first()
        if exists is None:
            known = [
                r[0]
                for r in connection.execute(
                    sa.text(f"SELECT name FROM registered_models WHERE 1 = 1{where}"), params
                )
            ]
            prompts = _prompt_names(connection, known)
            known = sorted(n for n in known if n not in prompts)[:_MODELS_PAGE]
            raise ModelNotFound(
                f"registered model {name!r} not found; known: {', '.join(known) or '(none)'}"
            )
        aliases_by_version: dict[str, list[str]] = {}
        for alias, version in _aliases(connection, name).items():
            aliases_by_version.setdefault(version, []).append(alias)
        versions = [] if name in _prompt_names(connection, [name]) else _versions(connection, name)
        tag_where = _workspace(connection, "model_version_tags")
        tags: dict[str, dict[str, str]] = {}
        for version, key, value in connection.execute(
            sa.text(
                f"SELECT version, key, value FROM model_version_tags WHERE name = :name{tag_where}"
            ),
            {**params, "name": name},
        ):
            tags.setdefault(str(version), {})[key] = value
    infos = []
    for version, run_id, source, created in sorted(versions, key=lambda v: int(v[0]), reverse=True):
        own = dict(tags.get(str(version), {}))
        metrics: dict[str, float] = {}
        for key, value in list(own.items()):
            if key.startswith("metric."):
                number = _as_metric(value)
                if number is None:
                    continue
                metrics[key.removeprefix("metric.")] = number
                del own[key]
        infos.append(
            VersionRow(
                name=name,
                version=str(version),
                run_id=run_id or "",
                source=source,
                aliases=sorted(aliases_by_version.get(str(version), [])),
                tags=own,
                metrics=metrics,
                created=int(created or 0),
            )
        )
    return infos
