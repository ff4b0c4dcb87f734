"""Run an experiment plan and record everything in MLflow and the SQL results tables.

One parent run per execution. A single (recipe, model) cell is recorded on the parent itself; a
matrix gets one nested run per cell. Every search candidate gets a child run with its params and
the mean/std of each metric, so the MLflow UI can compare them.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.base import BaseEstimator

from mlfactory.datasets._base import Dataset
from mlfactory.db import get_engine
from mlfactory.logs import get_logger
from mlfactory.schema import NUMBER_FORMATS
from mlfactory.serialization import file_sha256, skops_trusted_types
from mlfactory.settings import Settings, mask_secrets, mask_urls_in_text
from mlfactory.spec import masked_spec_text
from mlfactory.tracking import (
    CV_FOLD_RESULTS,
    TUNING_RESULTS,
    append_rows,
    dataset_fingerprint,
    environment_info,
    experiment_for,
    git_info,
    open_tracking,
    owner_tags,
    reap_stale_runs,
    retry_on_locked,
    tracked_run,
)
from mlfactory.tracking._results import params_json
from mlfactory.training._lineage import dataset_inputs, log_dataset_inputs, standard_tags
from mlfactory.training._plots import evaluation_figure
from mlfactory.training._requirements import model_requirements
from mlfactory.training._search import (
    SearchConfig,
    SearchOutcome,
    cv_metrics,
    in_process,
    parallel_context,
    run_search,
    score_on,
)

__all__ = ["CellPlan", "CellResult", "ExperimentPlan", "ExperimentResult", "run_experiment"]

logger = get_logger(__name__)
REFERENCE_SAMPLE_ROWS = 5_000
_MAX_PARAM_LENGTH = 6_000
SOURCE = "mlflow.source."


@dataclass
class CellPlan:
    """One (recipe, model) pipeline and its search."""

    name: str  # e.g. "power/LogisticRegression"
    pipeline: BaseEstimator
    search: SearchConfig


@dataclass
class ExperimentPlan:
    """Everything the runner needs, already resolved and validated (see ``mlfactory.spec``)."""

    name: str
    seed: int
    dataset: Dataset
    train_index: np.ndarray
    test_index: np.ndarray
    cv: Any
    cells: list[CellPlan]
    resolved: dict[str, Any] = field(default_factory=dict)  # JSON-able resolved spec
    split_record: dict[str, Any] = field(default_factory=dict)
    spec_path: Path | None = None


@dataclass
class CellResult:
    name: str
    run_id: str
    outcome: SearchOutcome
    test_scores: dict[str, float]
    model_uri: str


@dataclass
class ExperimentResult:
    run_id: str
    experiment: str
    cells: list[CellResult]
    best: CellResult

    def leaderboard(self) -> pd.DataFrame:
        """One row per cell, best first by the refit metric's CV mean."""
        rows = []
        for cell in self.cells:
            metric = cell.outcome.refit_metric
            rows.append(
                {
                    "cell": cell.name,
                    "run_id": cell.run_id,
                    "best_params": json.dumps(cell.outcome.best_params, default=repr),
                    f"cv_{metric}_mean": cell.outcome.best_scores[metric],
                    **{f"test_{k}": v for k, v in cell.test_scores.items()},
                    "candidates": len(cell.outcome.candidates),
                    "failed": int((cell.outcome.candidates["status"] == "failed").sum()),
                    "seconds": round(cell.outcome.elapsed_s, 2),
                }
            )
        metric = self.best.outcome.refit_metric
        by = f"cv_{metric}_mean"
        return pd.DataFrame(rows).sort_values(by, ascending=False, ignore_index=True)


ProgressCallback = Callable[[str], None]


def run_experiment(
    plan: ExperimentPlan,
    settings: Settings,
    *,
    n_jobs: int | None = None,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
) -> ExperimentResult:
    """Search every cell, refit the best, score it on the held-out test set, record it all."""
    say = progress or (lambda _message: None)
    client = open_tracking(settings)
    reap_stale_runs(client, settings.stale_run_timeout, by="mlfactory train")
    experiment_id = experiment_for(client, plan.name, settings)
    data = plan.dataset
    X_train, y_train = data.X.iloc[plan.train_index], data.y.iloc[plan.train_index]
    X_test, y_test = data.X.iloc[plan.test_index], data.y.iloc[plan.test_index]
    groups = None if data.groups is None else data.groups.iloc[plan.train_index]
    scheduler = scheduler or settings.dask_scheduler_address
    if scheduler is not None and n_jobs is None:
        n_jobs = -1  # every worker of the cluster
    tags = {  # masked below: a URL with a password never becomes a tag
        "mlfactory.role": "parent",
        "mlfactory.spec": plan.name,
        "mlfactory.dataset": data.name,
        "mlfactory.task": str(data.task),
        "mlfactory.seed": str(plan.seed),
        "mlfactory.split_sha256": str(plan.split_record.get("sha256", "")),
        "mlfactory.scheduler": scheduler or "local",
        "mlfactory.n_jobs": str(n_jobs),
        **{f"mlfactory.{k}": v for k, v in git_info().items()},
        **{f"mlfactory.{k}": v for k, v in environment_info().items()},
        **{f"mlfactory.{k}": v for k, v in dataset_fingerprint(data.X, data.y).items()},
    }
    # MLflow's own who/from-what tags, which MlflowClient.create_run does not add by itself
    tags.update(standard_tags(plan.spec_path, {"git_commit": tags["mlfactory.git_commit"]}))
    tags = mask_secrets(tags)
    resolved = mask_secrets(plan.resolved)  # every URL of the spec, in any field, masked
    matrix = len(plan.cells) > 1
    results: list[CellResult] = []
    beat = settings.heartbeat_interval
    with tracked_run(
        client, experiment_id, plan.name, tags=tags, heartbeat_interval=beat
    ) as parent_id:
        _log_params(client, parent_id, {**_flatten(resolved), **_role_params(data)})
        inputs = dataset_inputs(data.name, data.source, X_train, y_train, X_test, y_test)
        log_dataset_inputs(inputs)  # the rows' digest, schema and size; never the rows
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            if plan.spec_path is not None and plan.spec_path.exists():
                # the stored copy of the spec file holds the masked form, never a password
                text = masked_spec_text(plan.spec_path.read_text(encoding="utf-8"))
                (out / plan.spec_path.name).write_text(text, encoding="utf-8")
            _write_json(out / "resolved_spec.json", resolved)
            _write_json(out / "split.json", plan.split_record)
            if data.role_decisions:  # every column of a user table: its role and why
                _write_json(out / "roles.json", data.role_decisions)
            mlflow.log_artifacts(str(out), "spec")
        with parallel_context(scheduler, scatter=[X_train, y_train]):
            for cell in plan.cells:
                say(f"searching {cell.name} ({cell.search.kind})")
                outcome = run_search(
                    cell.pipeline,
                    X_train,
                    y_train,
                    plan.cv,
                    cell.search,
                    n_jobs=n_jobs,
                    groups=groups,
                )
                with in_process():  # refit model, test scores, plots, logging: no cluster
                    test_scores = score_on(
                        outcome.best_estimator, X_test, y_test, cell.search.scoring
                    )
                    say(f"recording {cell.name}")
                    if matrix:
                        cell_tags = {**tags, "mlfactory.role": "cell", "mlfactory.cell": cell.name}
                        with tracked_run(
                            client, experiment_id, cell.name, tags=cell_tags,
                            parent_run_id=parent_id, heartbeat_interval=beat,
                        ) as cell_id:  # fmt: skip
                            log_dataset_inputs(inputs)
                            model_uri = _record_cell(
                                client, plan, cell, cell_id, outcome, test_scores, X_train, y_train,
                                X_test, y_test, settings,
                            )  # fmt: skip
                    else:
                        cell_id = parent_id
                        mlflow.set_tag("mlfactory.cell", cell.name)
                        model_uri = _record_cell(
                            client, plan, cell, cell_id, outcome, test_scores, X_train, y_train,
                            X_test, y_test, settings,
                        )  # fmt: skip
                results.append(CellResult(cell.name, cell_id, outcome, test_scores, model_uri))
        best = max(results, key=lambda r: r.outcome.best_scores[r.outcome.refit_metric])
        result = ExperimentResult(parent_id, plan.name, results, best)
        if matrix:
            mlflow.log_metrics(
                {
                    **{f"test_{k}": v for k, v in best.test_scores.items()},
                    **cv_metrics(best.outcome.best_row),  # same names as the best cell's
                }
            )
            mlflow.set_tags(
                {
                    "mlfactory.best_cell": best.name,
                    "mlfactory.best_run_id": best.run_id,
                    "mlfactory.model_uri": best.model_uri,
                }
            )
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "leaderboard.csv"
                result.leaderboard().to_csv(path, index=False)
                mlflow.log_artifact(str(path))
    return result


def _record_cell(
    client: MlflowClient,
    plan: ExperimentPlan,
    cell: CellPlan,
    run_id: str,
    outcome: SearchOutcome,
    test_scores: dict[str, float],
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    settings: Settings,
) -> str:
    """Log one cell on the active run ``run_id``: params, metrics, tables, plot, model."""
    best = outcome.best_estimator
    metric = outcome.refit_metric
    best_row = outcome.candidates.loc[outcome.candidates["candidate"] == outcome.best_index].iloc[0]
    metrics = {f"test_{k}": v for k, v in test_scores.items()}
    metrics.update(cv_metrics(best_row))  # the names its candidate run uses
    metrics["search_seconds"] = outcome.elapsed_s
    metrics["candidates_failed"] = float((outcome.candidates["status"] == "failed").sum())
    _log_params(
        client,
        run_id,
        {
            "cell": cell.name,
            "search.kind": cell.search.kind,
            "refit": metric,
            **{f"best.{k}": v for k, v in outcome.best_params.items()},
        },
    )
    children = _log_candidates(client, plan, cell, run_id, outcome)
    _append_sql_tables(settings, plan.name, cell.name, run_id, outcome, children)

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        table = outcome.candidates.assign(params=outcome.candidates["params"].map(params_json))
        table.to_csv(out / "cv_results.csv", index=False)
        outcome.folds.to_csv(out / "cv_folds.csv", index=False)
        figure = evaluation_figure(best, X_test, y_test, str(plan.dataset.task), cell.name)
        figure.savefig(out / "evaluation.png", dpi=100)
        sample = X_train.sample(
            n=min(REFERENCE_SAMPLE_ROWS, len(X_train)), random_state=plan.seed
        ).assign(**{str(y_train.name or "target"): y_train})
        sample.to_parquet(out / "reference_sample.parquet")
        mlflow.log_artifacts(str(out))

    predictions = best.predict(X_test.head(50))
    with warnings.catch_warnings():
        # MLflow warns about its own pyfunc type hints, which says nothing about this model
        warnings.simplefilter("ignore", category=UserWarning)
        info = _log_sklearn_model(best, X_train, X_test, predictions, plan.dataset.number_formats)
    # After the model, and linked to it: MLflow's log_model copies the run's metrics logged so
    # far onto the model by logging them again, a duplicate key that PostgreSQL rejects (MLflow
    # then recovers, but psycopg prints "error ignored terminating <psycopg.Pipeline ...>").
    mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)}, model_id=info.model_id)
    sha = _model_file_sha256(info.artifact_path)
    mlflow.set_tags(
        {
            "mlfactory.model_uri": info.model_uri,
            "mlfactory.model_id": info.model_id or "",
            "mlfactory.model_sha256": sha,
        }
    )
    return info.model_uri


def _log_sklearn_model(
    model: BaseEstimator,
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    predictions: np.ndarray,
    number_formats: dict[str, str] | None = None,
) -> Any:
    """Log ``model`` with skops, our checked allow-list, a signature and an input example; how
    text columns were read as numbers goes into MLmodel's ``metadata`` (``NUMBER_FORMATS``)."""
    formats = {c: f for c, f in (number_formats or {}).items() if c in X_train.columns}
    return mlflow.sklearn.log_model(
        model,
        name="model",
        serialization_format="skops",
        skops_trusted_types=skops_trusted_types(model),
        signature=_signature(X_train, X_test, predictions),
        input_example=X_train.head(3),
        pip_requirements=model_requirements(model),  # complete: no mlfactory needed
        metadata={NUMBER_FORMATS: formats} if formats else None,
    )


def _signature(X_train: pd.DataFrame, X_test: pd.DataFrame, predictions: np.ndarray) -> Any:
    """The model's input schema: types from the data, and a column is required only when it has
    no missing value anywhere in the training and test tables (not just in a sample)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = infer_signature(X_test.head(50), predictions)
    nullable = {str(c) for frame in (X_train, X_test) for c in frame.columns[frame.isna().any()]}
    inputs = [
        ColSpec(spec.type, spec.name, required=spec.name not in nullable)
        for spec in signature.inputs.inputs
    ]
    return ModelSignature(Schema(inputs), signature.outputs, signature.params)


def _model_file_sha256(artifact_uri: str) -> str:
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file"):
        folder = Path(unquote(parsed.path))
    else:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri))
    return file_sha256(folder / "model.skops")


def _log_candidates(
    client: MlflowClient,
    plan: ExperimentPlan,
    cell: CellPlan,
    parent_id: str,
    outcome: SearchOutcome,
) -> dict[int, str]:
    """One finished (or failed) child run per candidate, written with one batch call each."""
    parent = client.get_run(parent_id)
    experiment_id = parent.info.experiment_id
    inherited = {  # who and from what, as on the parent (MLflow's standard tags)
        k: v for k, v in parent.data.tags.items() if k == "mlflow.user" or k.startswith(SOURCE)
    }
    rank_column = f"rank_test_{outcome.refit_metric}"
    children: dict[int, str] = {}
    for row in outcome.candidates.to_dict("records"):
        index = int(row["candidate"])
        tags = {
            **inherited,
            "mlflow.parentRunId": parent_id,
            "mlfactory.role": "candidate",
            "mlfactory.cell": cell.name,
            "mlfactory.candidate": str(index),
            "mlfactory.status": row["status"],
            "mlfactory.rank": str(row.get(rank_column)),
            **owner_tags(),  # ended at once; a kill in between leaves it stale, not RUNNING
        }
        if row["status"] == "failed" and row.get("error"):
            tags["mlfactory.error"] = mask_urls_in_text(str(row["error"]))[:4_000]
        metrics = [Metric(name, value, 0, 0) for name, value in cv_metrics(row).items()]
        params = [Param(k, _param_text(v)) for k, v in row["params"].items()]
        status = "FINISHED" if row["status"] == "ok" else "FAILED"
        children[index] = _log_one_candidate(
            client, experiment_id, f"{cell.name}#{index}", tags, params, metrics, status
        )
    return children


def _log_one_candidate(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    tags: dict[str, str],
    params: list[Param],
    metrics: list[Metric],
    status: str,
) -> str:
    run = retry_on_locked(lambda: client.create_run(experiment_id, run_name=name, tags=tags))
    run_id = run.info.run_id
    retry_on_locked(lambda: client.log_batch(run_id, metrics=metrics, params=params))
    retry_on_locked(lambda: client.set_terminated(run_id, status))
    return run_id


def _append_sql_tables(
    settings: Settings,
    experiment: str,
    cell: str,
    run_id: str,
    outcome: SearchOutcome,
    children: dict[int, str],
) -> None:
    engine = get_engine(settings.database_url)
    params_by_candidate = {
        int(row["candidate"]): params_json(row["params"])
        for _, row in outcome.candidates.iterrows()
    }
    fold_rows = [
        {
            "run_id": run_id,
            "experiment": experiment,
            "cell": cell,
            "candidate": int(row.candidate),
            "fold": int(row.fold),
            "metric": row.metric,
            "train_score": row.train_score,
            "test_score": row.test_score,
            "params": params_by_candidate[int(row.candidate)],
        }
        for row in outcome.folds.itertuples(index=False)
    ]
    tuning_rows = []
    metrics = [
        c.removeprefix("mean_test_") for c in outcome.candidates if c.startswith("mean_test_")
    ]
    for _, row in outcome.candidates.iterrows():
        for metric in metrics:
            tuning_rows.append(
                {
                    "run_id": run_id,
                    "child_run_id": children.get(int(row["candidate"])),
                    "experiment": experiment,
                    "cell": cell,
                    "candidate": int(row["candidate"]),
                    "metric": metric,
                    "mean_test_score": row[f"mean_test_{metric}"],
                    "std_test_score": row[f"std_test_{metric}"],
                    "mean_train_score": row[f"mean_train_{metric}"],
                    "std_train_score": row[f"std_train_{metric}"],
                    "rank": row.get(f"rank_test_{metric}"),
                    "status": row["status"],
                    "error": mask_secrets(row["error"]),
                    "mean_fit_time": row["mean_fit_time"],
                    "params": params_by_candidate[int(row["candidate"])],
                }
            )
    retry_on_locked(lambda: append_rows(engine, CV_FOLD_RESULTS, fold_rows))
    retry_on_locked(lambda: append_rows(engine, TUNING_RESULTS, tuning_rows))


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return mask_urls_in_text(text)[:_MAX_PARAM_LENGTH]  # masked before it is cut


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = _param_text(value)
    return flat


def _log_params(client: MlflowClient, run_id: str, params: dict[str, str]) -> None:
    items = [Param(k[:250], _param_text(v)) for k, v in params.items()]
    for start in range(0, len(items), 100):  # MLflow's batch limit
        batch = items[start : start + 100]
        retry_on_locked(lambda batch=batch: client.log_batch(run_id, params=batch))


def _role_params(data: Any) -> dict[str, str]:
    """``roles.<role>`` = the columns a user table's inference gave that role (roles.json: why)."""
    by_role: dict[str, list[str]] = {}
    for decision in getattr(data, "role_decisions", None) or []:
        by_role.setdefault(f"roles.{decision['role']}", []).append(decision["column"])
    return {key: ", ".join(columns) for key, columns in by_role.items()}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
