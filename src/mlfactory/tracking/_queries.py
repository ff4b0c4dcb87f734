"""Read runs back: lists, one run's record, side-by-side comparisons (as DataFrames)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlfactory.exceptions import ModelNotFound
from mlfactory.settings import get_settings, mask_secrets
from mlfactory.tracking._owner import staleness
from mlfactory.tracking._sqlread import metric_order

__all__ = ["compare_runs", "get_run", "list_run_rows", "list_runs"]


def _time(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _timeout(stale_timeout: float | None) -> float:
    return get_settings().stale_run_timeout if stale_timeout is None else stale_timeout


def list_runs(
    client: MlflowClient,
    experiment: str | None = None,
    max_results: int = 50,
    include_children: bool = False,
    stale_timeout: float | None = None,
) -> pd.DataFrame:
    """Newest runs first (top-level runs only unless ``include_children``).

    A RUNNING run whose owner is gone shows as ``RUNNING (stale)``, with the reason in the
    ``stale`` column (read from its tags: nothing is written; see ``_owner``).
    """
    rows = list_run_rows(client, experiment, max_results, include_children, stale_timeout)
    if rows is None:
        return pd.DataFrame(columns=["run_id", "experiment", "name", "status", "stale", "started"])
    return pd.DataFrame(rows)


def list_run_rows(
    client: MlflowClient,
    experiment: str | None = None,
    max_results: int = 50,
    include_children: bool = False,
    stale_timeout: float | None = None,
) -> list[dict[str, Any]] | None:
    """The rows of :func:`list_runs`, one dict per run (None: no experiment at all); test
    metrics by name, so that every reader gives the same columns in the same order."""
    timeout = _timeout(stale_timeout)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in client.search_experiments())
            raise ModelNotFound(
                f"experiment {experiment!r} not found; known: {', '.join(names) or '(none)'}"
            )
        experiments = [found]
    else:
        experiments = client.search_experiments()
    names = {e.experiment_id: e.name for e in experiments}
    if not names:
        return None
    runs = client.search_runs(
        list(names), order_by=["attributes.start_time DESC"], max_results=max_results * 20
    )
    if not include_children:
        runs = [r for r in runs if r.data.tags.get("mlfactory.role") != "candidate"]
    rows = []
    for run in runs[:max_results]:
        found = run.data.metrics  # in the order readers show them (MLflow's is the store's rows)
        metrics = {k: found[k] for k in sorted(found, key=metric_order) if k.startswith("test_")}
        duration = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None
        stale = staleness(run.info.status, run.data.tags, timeout)
        rows.append(
            {
                "run_id": run.info.run_id,
                "experiment": names.get(run.info.experiment_id, run.info.experiment_id),
                "name": run.info.run_name,
                "role": run.data.tags.get("mlfactory.role", ""),
                "status": f"{run.info.status} (stale)" if stale else run.info.status,
                "stale": stale or "",
                "started": _time(run.info.start_time),
                "seconds": duration,
                **metrics,
            }
        )
    return rows


def get_run(
    client: MlflowClient, run_id: str, stale_timeout: float | None = None
) -> dict[str, Any]:
    """A run's info, params, metrics, tags (without MLflow's internal ones) and artifact paths.

    The status of a stale run says so and why: ``RUNNING (stale: its process 12 on h is gone)``.
    """
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ModelNotFound(f"run {run_id!r} not found in the tracking store") from None
    artifacts = [a.path for a in client.list_artifacts(run_id)]
    stale = staleness(run.info.status, run.data.tags, _timeout(stale_timeout))
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "status": f"{run.info.status} (stale: {stale})" if stale else run.info.status,
        "stale": stale or "",
        "started": _time(run.info.start_time),
        "ended": _time(run.info.end_time),
        "artifact_uri": run.info.artifact_uri,
        # masked again on the way out: runs recorded before masking, or by other tools
        "params": mask_secrets(dict(sorted(run.data.params.items()))),
        "metrics": dict(sorted(run.data.metrics.items())),
        "tags": mask_secrets(
            {k: v for k, v in sorted(run.data.tags.items()) if not k.startswith("mlflow.")}
        ),
        "artifacts": artifacts,
    }


def compare_runs(client: MlflowClient, run_ids: list[str]) -> pd.DataFrame:
    """Params and metrics of several runs side by side, one column per run."""
    records = {run_id: get_run(client, run_id) for run_id in run_ids}
    keys: list[tuple[str, str]] = []
    for record in records.values():
        for kind in ("params", "metrics"):
            keys += [(kind, key) for key in record[kind] if (kind, key) not in keys]
    table = pd.DataFrame(
        {
            run_id[:12]: [record[kind].get(key) for kind, key in keys]
            for run_id, record in records.items()
        },
        index=pd.MultiIndex.from_tuples(keys, names=["kind", "key"]),
    )
    values = table.astype(str)
    table["differs"] = values.nunique(axis=1) > 1
    return table.sort_index()
