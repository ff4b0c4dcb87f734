"""Fleet training: one search per segment, packed into tasks, recorded once.

One MLflow parent run per fleet training. Segments are fitted with the experiment's own search
(:func:`mlfactory.training.run_search`) in tasks of about ``segments.pack_rows`` rows, run in
parallel by joblib locally or on a Dask cluster (:func:`mlfactory.training.parallel_context`).
Each fitted pipeline is serialised with skops *in the worker*, so what comes back is bytes and a
SHA-256. The parent run gets the bundle (``fleet/manifest.json`` + one skops file per segment,
logged in one call), the ``segment_results`` table and its parquet copy, and batched metrics;
a child run is created only for a segment that failed or regressed. No per-segment
``log_model`` round trip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlfactory.datasets._base import Task
from mlfactory.fleet._plan import FALLBACK_KEY, FleetPlan, pack, plan_for
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, mask_secrets, mask_urls_in_text

__all__ = ["FleetResult", "SegmentFit", "train_fleet"]

logger = get_logger(__name__)
MANIFEST_FORMAT = "mlfactory.fleet/1"
ARTIFACT_DIR = "fleet"
REGRESSION_TOLERANCE = 0.02  # CV refit-metric drop vs the previous training that is a regression
REFERENCE_ROWS_PER_SEGMENT = 300


@dataclass
class SegmentFit:
    """What a worker sends back for one segment: scores and the serialised model, or an error."""

    key: str
    status: str  # trained | failed
    train_rows: int
    test_rows: int
    best_params: dict[str, Any] = field(default_factory=dict)
    cv_mean: float | None = None
    cv_std: float | None = None
    cv_metrics: dict[str, float] = field(default_factory=dict)
    test_scores: dict[str, float] = field(default_factory=dict)
    model: bytes | None = None
    sha256: str | None = None
    types: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    test_index: Any = None  # dataset row labels of the test rows scored below
    test_pred: Any = None  # the model's predictions on its test rows
    test_proba: Any = None  # and probabilities (classifiers)
    data_sha256: str | None = None  # the segment's rows (training and test), for reuse
    reused: dict[str, Any] | None = None  # the previous training's manifest entry, reused


@dataclass
class FleetResult:
    """The recorded fleet: parent run, per-segment table, manifest and fleet-level scores."""

    run_id: str
    experiment: str
    table: pd.DataFrame  # one row per segment (+ the fallback), as in segment_results
    manifest: dict[str, Any]
    test_scores: dict[str, float]  # every test row routed through the fleet
    fallback_scores: dict[str, float]  # the fallback model alone on every test row
    tasks: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        counts = self.table[self.table["segment"] != FALLBACK_KEY]["status"].value_counts()
        return {
            "segments": int(counts.sum()),
            **{status: int(counts.get(status, 0)) for status in STATUSES},
            "tasks": self.tasks,
            "seconds": round(self.seconds, 2),
        }


STATUSES = ("trained", "reused", "regressed", "failed", "fallback")


def _one_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(exc)).strip().splitlines()
    return mask_urls_in_text(text[-1] if text else repr(exc))[:2_000]


def _safe_scores(estimator: Any, X: pd.DataFrame, y: pd.Series, scoring: list[str]) -> dict:
    from sklearn.exceptions import UndefinedMetricWarning

    from mlfactory.spec._metrics import scorer_for

    scores = {}
    for name in scoring:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UndefinedMetricWarning)
                warnings.simplefilter("ignore", category=UserWarning)
                scores[name] = float(scorer_for(name, y)(estimator, X, y))
        except (ValueError, IndexError):  # e.g. one class among the segment's test rows
            scores[name] = float("nan")
    return scores


def _fit_segment(pipeline, config, cv, task, key, X_tr, y_tr, X_te, y_te) -> SegmentFit:
    import skops.io as sio

    from mlfactory.serialization import _check
    from mlfactory.training._search import cv_metrics, run_search

    started = time.perf_counter()
    fit = SegmentFit(key, "failed", len(X_tr), len(X_te))
    try:
        if task == Task.CLASSIFICATION:
            counts = y_tr.value_counts()
            if len(counts) < 2:
                raise ValueError(f"one class among its {len(y_tr)} training rows")
        outcome = run_search(pipeline, X_tr, y_tr, cv, config, n_jobs=1)
        best = outcome.best_estimator
        row = outcome.best_row
        metric = outcome.refit_metric
        fit.best_params = dict(outcome.best_params)
        fit.cv_mean = float(row[f"mean_test_{metric}"])
        fit.cv_std = float(row[f"std_test_{metric}"])
        fit.cv_metrics = cv_metrics(row)
        if len(X_te):  # preprocess the test rows once; the scores come from these outputs
            final, Z = best, X_te
            if isinstance(best, Pipeline) and len(best.steps) > 1:
                final, Z = best.steps[-1][1], best[:-1].transform(X_te)
            classes = list(getattr(final, "classes_", [])) if task == Task.CLASSIFICATION else []
            fit.test_index = X_te.index.to_numpy()
            fit.test_pred = np.asarray(final.predict(Z))
            if classes and hasattr(final, "predict_proba"):
                fit.test_proba = np.asarray(final.predict_proba(Z))
            outputs = _Outputs(X_te.index, [_plain(c) for c in classes])
            outputs.put(fit)
            fit.test_scores = _safe_scores(outputs, X_te, y_te, list(config.scoring))
        fit.model = sio.dumps(best)  # serialised once, here: the bytes are the file
        fit.types = _check(sio.get_untrusted_types(data=fit.model), f"model of segment {key!r}")
        fit.sha256 = hashlib.sha256(fit.model).hexdigest()
        fit.status = "trained"
    except Exception as exc:  # one segment's failure is recorded, never the fleet's
        fit.error = _one_line(exc)
    fit.seconds = time.perf_counter() - started
    return fit


def _fit_pack(pipeline, config, cv, task, items) -> list[SegmentFit]:
    """One task: fit every segment of the pack in turn (each with a single-process search)."""
    return [_fit_segment(pipeline, config, cv, task, *item) for item in items]


def _workers(n_jobs: int | None, scheduler: str | None) -> int:
    if scheduler is not None:
        return 8
    import joblib

    return max(1, joblib.effective_n_jobs(n_jobs))


def fit_segments(
    resolved: Any,
    plan: FleetPlan,
    *,
    n_jobs: int | None = None,
    scheduler: str | None = None,
    say: Callable[[str], None] = lambda _m: None,
    skip: frozenset[str] = frozenset(),
) -> tuple[dict[str, SegmentFit], int]:
    """Fit every segment of ``plan`` (and the fallback) in packed tasks; (fits by key, tasks).

    Keys in ``skip`` (segments reused from the previous training) are not fitted.
    """
    from joblib import Parallel, delayed

    from mlfactory.training._plan import _search_config
    from mlfactory.training._search import parallel_context

    cell = resolved.cells[0]
    # the fleet records test-fold scores only: training-fold scores would cost as much again
    config = dataclasses.replace(_search_config(resolved, cell), train_scores=False)
    data = resolved.dataset
    X, y = data.X, data.y
    segments = {s.key: s for s in plan.trained if s.key not in skip}
    total = sum(len(s.train_idx) for s in segments.values())
    workers = _workers(n_jobs, scheduler)
    # small segments share a task; never fewer than ~4 tasks per worker to balance the load
    pack_rows = max(1, min(resolved.spec.segments.pack_rows, math.ceil(total / (4 * workers))))
    packs = pack({k: len(s.train_idx) for k, s in segments.items()}, pack_rows)
    items_of = [
        [
            (
                key,
                X.iloc[segments[key].train_idx],
                y.iloc[segments[key].train_idx],
                X.iloc[segments[key].test_idx],
                y.iloc[segments[key].test_idx],
            )
            for key in keys
        ]
        for keys in packs
    ]
    if plan.fallback == "global" and FALLBACK_KEY not in skip:
        items_of.insert(
            0,
            [
                (
                    FALLBACK_KEY,
                    X.iloc[resolved.train_idx],
                    y.iloc[resolved.train_idx],
                    X.iloc[resolved.test_idx],
                    y.iloc[resolved.test_idx],
                )
            ],
        )
    say(f"fitting {len(segments)} segments in {len(items_of)} tasks")
    if not items_of:
        return {}, 0
    jobs = -1 if (scheduler is not None and n_jobs is None) else n_jobs
    with parallel_context(scheduler):
        results = Parallel(n_jobs=jobs)(
            delayed(_fit_pack)(cell.pipeline, config, resolved.cv, data.task, items)
            for items in items_of
        )
    fits = {fit.key: fit for part in results for fit in part}
    return fits, len(items_of)


def _row_hashes(data: Any) -> np.ndarray:
    """One 64-bit hash per row of features and target (pandas' stable row hash)."""
    rows = pd.util.hash_pandas_object(data.X, index=False).to_numpy()
    target = pd.util.hash_pandas_object(data.y, index=False).to_numpy()
    return rows ^ (target * np.uint64(0x9E3779B97F4A7C15))


def _data_sha256(row_hash: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray) -> str:
    digest = hashlib.sha256(row_hash[train_idx].tobytes())
    digest.update(b"|")
    digest.update(row_hash[test_idx].tobytes())
    return digest.hexdigest()


def _config_sha256(resolved: Any) -> str:
    """What a segment model depends on besides its rows: pipeline, search, CV, versions."""
    import sklearn

    from mlfactory import __version__

    parts = {
        "cell": resolved.cells[0].to_dict(),
        "cv": repr(resolved.cv),
        "scoring": resolved.scoring,
        "refit": resolved.refit,
        "search": resolved.spec.search.model_dump(mode="json"),
        "seed": resolved.spec.seed,
        "columns": [str(c) for c in resolved.dataset.X.columns],
        "versions": {"mlfactory": __version__, "scikit-learn": sklearn.__version__},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


REUSABLE_STATUSES = ("trained", "reused", "regressed")  # rows whose model is in a manifest
_QUERY_CHUNK = 500  # data fingerprints per IN (...) list: well within every driver's limits


def _reuse_candidates(
    settings: Settings, experiment: str, config_sha: str, shas: dict[str, str], run_id: str
) -> dict[str, str]:
    """Segment key -> the newest earlier fleet training of ``experiment`` that recorded a model
    of that segment for the same rows and configuration (one indexed query on
    ``segment_results``, not a read of every earlier run)."""
    import sqlalchemy as sa

    from mlfactory.db import ensure_schema, get_engine
    from mlfactory.db._tables import SEGMENT_RESULTS as T

    engine = get_engine(settings.database_url)
    ensure_schema(engine)  # the training writes its rows anyway: an old schema stops it now
    wanted = sorted(set(shas.values()))
    found: dict[str, tuple[int, str]] = {}
    with engine.connect() as connection:
        for start in range(0, len(wanted), _QUERY_CHUNK):
            rows = connection.execute(
                sa.select(T.c.id, T.c.segment, T.c.data_sha256, T.c.run_id).where(
                    T.c.experiment == experiment,
                    T.c.config_sha256 == config_sha,
                    T.c.data_sha256.in_(wanted[start : start + _QUERY_CHUNK]),
                    T.c.model_sha256.is_not(None),
                    T.c.status.in_(REUSABLE_STATUSES),
                    T.c.run_id != run_id,
                )
            )
            for row_id, segment, data_sha, source_run in rows:
                if shas.get(segment) == data_sha and row_id > found.get(segment, (-1, ""))[0]:
                    found[segment] = (row_id, source_run)
    return {segment: source_run for segment, (_id, source_run) in found.items()}


def _reusable(
    settings: Settings, resolved: Any, plan: FleetPlan, shas: dict[str, str], run_id: str
) -> dict[str, dict[str, Any]]:
    """Segments whose rows and configuration equal those of *any* earlier fleet training of the
    experiment: key -> that training's manifest entry (the model is referenced, not copied; its
    file is verified when it is used). Only the manifests of the trainings reused from are read."""
    from mlflow.exceptions import MlflowException

    from mlfactory.exceptions import MlfactoryError
    from mlfactory.fleet._registry import _run_manifest
    from mlfactory.tracking import open_tracking

    config_sha = _config_sha256(resolved)
    sources = _reuse_candidates(settings, resolved.spec.name, config_sha, shas, run_id)
    by_run: dict[str, list[str]] = {}
    for key, source_run in sources.items():
        by_run.setdefault(source_run, []).append(key)
    client = open_tracking(settings) if by_run else None
    reuse: dict[str, dict[str, Any]] = {}
    for source_run, keys in by_run.items():
        try:
            run = client.get_run(source_run)
            with tempfile.TemporaryDirectory() as folder:
                manifest = _run_manifest(settings, run, Path(folder))
        except (MlflowException, MlfactoryError, OSError) as exc:
            logger.warning("fleet: earlier training %s not reusable: %s", source_run, exc)
            continue
        if manifest.get("config_sha256") != config_sha:
            continue
        old = dict(manifest.get("segments") or {})
        if manifest.get("fallback"):
            old[FALLBACK_KEY] = manifest["fallback"]
        for key in keys:
            entry = old.get(key)
            if entry is not None and entry.get("data_sha256") == shas[key]:
                reuse[key] = {k: v for k, v in entry.items() if k not in ("gate", "reused_in_run")}
    return reuse


def _reused_fit(
    key: str, entry: dict[str, Any], model: Any, X_te, y_te, refit: str, scoring, task
) -> SegmentFit:
    """A segment taken over from the previous training: its recorded scores, its test outputs."""
    metrics = entry.get("metrics") or {}
    fit = SegmentFit(key, "reused", int(entry.get("train_rows", 0)), len(X_te))
    fit.best_params = dict(entry.get("best_params") or {})
    fit.cv_mean = metrics.get(f"cv_{refit}_mean")
    fit.cv_std = metrics.get(f"cv_{refit}_std")
    fit.cv_metrics = {k: v for k, v in metrics.items() if k.startswith("cv_")}
    fit.sha256, fit.types, fit.reused = entry["sha256"], list(entry.get("types") or []), entry
    if len(X_te):
        classes = list(getattr(model, "classes_", [])) if task == Task.CLASSIFICATION else []
        fit.test_index = X_te.index.to_numpy()
        fit.test_pred = np.asarray(model.predict(X_te))
        if classes and hasattr(model, "predict_proba"):
            fit.test_proba = np.asarray(model.predict_proba(X_te))
        outputs = _Outputs(X_te.index, [_plain(c) for c in classes])
        outputs.put(fit)
        fit.test_scores = _safe_scores(outputs, X_te, y_te, list(scoring))
    return fit


def _inputs(resolved: Any, by: list[str]) -> list[dict[str, Any]]:
    """The fleet's input schema: the pipeline's columns (MLflow types) plus the segment columns."""
    from mlflow.models import infer_signature

    from mlfactory.fleet._plan import _column

    X_train, X_test = resolved.X_train, resolved.X_test
    with warnings.catch_warnings():  # MLflow's hint about integer columns: nullability is below
        warnings.simplefilter("ignore", category=UserWarning)
        signature = infer_signature(X_test.head(50))
    nullable = {str(c) for frame in (X_train, X_test) for c in frame.columns[frame.isna().any()]}
    formats = resolved.dataset.number_formats  # how training read text numbers
    inputs = [
        {"name": spec.name, "type": str(spec.type.name), "required": spec.name not in nullable}
        | ({"number_format": formats[spec.name]} if spec.name in formats else {})
        for spec in signature.inputs.inputs
    ]
    names = {item["name"] for item in inputs}
    for column in by:
        if column not in names:
            values = _column(resolved.dataset, column)
            kind = "string"
            if values is not None and pd.api.types.is_integer_dtype(values):
                kind = "long"
            inputs.append({"name": column, "type": kind, "required": True})
    return inputs


def _file_name(key: str) -> str:
    return f"segments/{hashlib.sha256(key.encode()).hexdigest()[:24]}.skops"


def _previous_cv(settings: Settings, experiment: str, run_id: str) -> dict[str, float]:
    """The previous fleet training's CV refit score per segment (for "regressed")."""
    import sqlalchemy as sa

    from mlfactory.db import get_engine
    from mlfactory.db._tables import SEGMENT_RESULTS as T

    engine = get_engine(settings.database_url)
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(T.name):
            return {}
        last = connection.execute(
            sa.select(T.c.run_id)
            .where(T.c.experiment == experiment, T.c.run_id != run_id)
            .order_by(T.c.id.desc())
            .limit(1)
        ).scalar()
        if last is None:
            return {}
        rows = connection.execute(
            sa.select(T.c.segment, T.c.cv_mean).where(T.c.run_id == last, T.c.cv_mean.is_not(None))
        )
        return {segment: float(value) for segment, value in rows}


def train_fleet(
    resolved: Any,
    settings: Settings,
    *,
    n_jobs: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> FleetResult:
    """Fit, score and record a fleet for a resolved spec with ``[segments]``."""
    import mlflow

    from mlfactory.db import get_engine
    from mlfactory.db._tables import SEGMENT_RESULTS
    from mlfactory.tracking import (
        append_rows,
        dataset_fingerprint,
        environment_info,
        experiment_for,
        git_info,
        open_tracking,
        reap_stale_runs,
        retry_on_locked,
        tracked_run,
    )
    from mlfactory.training._lineage import dataset_inputs, log_dataset_inputs, standard_tags
    from mlfactory.training._plan import plan_from_spec
    from mlfactory.training._runner import _flatten, _log_params, _write_json

    say = progress or (lambda _message: None)
    started = time.perf_counter()
    spec = resolved.spec
    plan = plan_for(resolved)
    experiment_plan = plan_from_spec(resolved)  # the split record, as a plain training has
    data = resolved.dataset
    scheduler = scheduler or settings.dask_scheduler_address
    client = open_tracking(settings)
    reap_stale_runs(client, settings.stale_run_timeout, by="mlfactory train")
    experiment_id = experiment_for(client, spec.name, settings)
    tags = {
        "mlfactory.role": "fleet",
        "mlfactory.fleet": "true",
        "mlfactory.spec": spec.name,
        "mlfactory.dataset": data.name,
        "mlfactory.task": str(data.task),
        "mlfactory.seed": str(spec.seed),
        "mlfactory.split_sha256": str(experiment_plan.split_record.get("sha256", "")),
        "mlfactory.scheduler": scheduler or "local",
        "mlfactory.n_jobs": str(n_jobs),
        "mlfactory.segments_by": ",".join(plan.by),
        **{f"mlfactory.{k}": v for k, v in git_info().items()},
        **{f"mlfactory.{k}": v for k, v in environment_info().items()},
        **{f"mlfactory.{k}": v for k, v in dataset_fingerprint(data.X, data.y).items()},
    }
    tags.update(standard_tags(spec.source, {"git_commit": tags["mlfactory.git_commit"]}))
    tags = mask_secrets(tags)
    resolved_dict = mask_secrets(resolved.to_dict())
    beat = settings.heartbeat_interval
    with tracked_run(
        client, experiment_id, spec.name, tags=tags, heartbeat_interval=beat
    ) as run_id:
        _log_params(client, run_id, {**_flatten(resolved_dict), **plan.summary()})
        inputs = dataset_inputs(
            data.name, data.source, resolved.X_train, resolved.y_train, resolved.X_test,
            resolved.y_test,
        )  # fmt: skip
        log_dataset_inputs(inputs)
        row_hash = _row_hashes(data)
        shas = {s.key: _data_sha256(row_hash, s.train_idx, s.test_idx) for s in plan.trained}
        if plan.fallback == "global":
            shas[FALLBACK_KEY] = _data_sha256(row_hash, resolved.train_idx, resolved.test_idx)
        reuse = _reusable(settings, resolved, plan, shas, run_id)
        if reuse:
            say(f"reusing {len(reuse)} unchanged segment model(s) of earlier trainings")
        fits, tasks = fit_segments(
            resolved, plan, n_jobs=n_jobs, scheduler=scheduler, say=say, skip=frozenset(reuse)
        )
        fits.update(_reuse_fits(settings, resolved, plan, reuse))
        for key, fit in fits.items():
            fit.data_sha256 = shas.get(key)
        say(f"recording {len(fits)} models")
        previous = _previous_cv(settings, spec.name, run_id)
        table, manifest, scores, fallback_scores = _assemble(resolved, plan, fits, run_id, previous)
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            (out / "segments").mkdir()
            for fit in fits.values():
                if fit.model is not None:
                    (out / _file_name(fit.key)).write_bytes(fit.model)
            _write_json(out / "manifest.json", manifest)
            table.to_parquet(out / "segment_results.parquet", index=False)
            heldout = resolved.X_test.assign(
                **{"__segment__": plan.keys.iloc[resolved.test_idx].to_numpy()},
                **{str(data.y.name or "target"): resolved.y_test},
            )
            heldout.to_parquet(out / "heldout.parquet")
            _reference_sample(resolved, plan, spec.seed).to_parquet(
                out / "reference_sample.parquet"
            )
            if spec.source is not None and Path(spec.source).exists():
                from mlfactory.spec import masked_spec_text

                text = masked_spec_text(Path(spec.source).read_text(encoding="utf-8"))
                (out / Path(spec.source).name).write_text(text, encoding="utf-8")
            _write_json(out / "resolved_spec.json", resolved_dict)
            mlflow.log_artifacts(str(out), ARTIFACT_DIR)  # one call for the whole bundle
        manifest_sha = hashlib.sha256(_manifest_bytes(manifest)).hexdigest()
        children = _child_runs(client, experiment_id, run_id, table, tags)
        table["child_run_id"] = table["segment"].map(children)
        rows = _sql_rows(table, run_id, spec.name, manifest["config_sha256"])
        engine = get_engine(settings.database_url)
        retry_on_locked(lambda: append_rows(engine, SEGMENT_RESULTS, rows))
        summary = table[table["segment"] != FALLBACK_KEY]["status"].value_counts()
        metrics = {
            "segments": float(len(plan.segments)),
            **{f"segments_{s}": float(summary.get(s, 0)) for s in STATUSES},
            "fallback_row_share": _fallback_share(table),
            "tasks": float(tasks),
            **{f"test_{k}": v for k, v in scores.items()},
            **{f"fallback_test_{k}": v for k, v in fallback_scores.items()},
        }
        _log_metrics(client, run_id, metrics)
        mlflow.set_tags(
            {
                "mlfactory.fleet_manifest": f"{ARTIFACT_DIR}/manifest.json",
                "mlfactory.fleet_manifest_sha256": manifest_sha,
                "mlfactory.cell": resolved.cells[0].label,
            }
        )
    result = FleetResult(
        run_id, spec.name, table, manifest, scores, fallback_scores, tasks,
        time.perf_counter() - started,
    )  # fmt: skip
    logger.info("fleet %s: %s (run %s)", spec.name, result.summary(), run_id)
    return result


def _reuse_fits(settings, resolved, plan, reuse: dict[str, dict[str, Any]]) -> dict:
    """Load each reused model once (verified) to score its test rows for the fleet's scores."""
    if not reuse:
        return {}
    import shutil

    from mlfactory.fleet._registry import ModelFiles

    data = resolved.dataset
    segments = {s.key: s for s in plan.segments}
    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-reuse-"))
    try:
        files = ModelFiles(settings, work)
        fits = {}
        for key, entry in reuse.items():
            model = files.load(key, entry, f"fleet {resolved.spec.name} (reused)")
            test_idx = resolved.test_idx if key == FALLBACK_KEY else segments[key].test_idx
            fits[key] = _reused_fit(
                key, entry, model, data.X.iloc[test_idx], data.y.iloc[test_idx],
                resolved.refit, resolved.scoring, data.task,
            )  # fmt: skip
            if key == FALLBACK_KEY:
                fits[key].train_rows = len(resolved.train_idx)
        return fits
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _reference_sample(resolved: Any, plan: FleetPlan, seed: int) -> pd.DataFrame:
    """Training rows for drift checks: up to ``REFERENCE_ROWS_PER_SEGMENT`` of every segment
    (with ``__segment__``), so each segment can be compared with its own traffic."""
    data = resolved.dataset
    frame = resolved.X_train.assign(
        **{"__segment__": plan.keys.iloc[resolved.train_idx].to_numpy()},
        **{str(data.y.name or "target"): resolved.y_train},
    )
    shuffled = frame.sample(frac=1.0, random_state=seed)
    return shuffled.groupby("__segment__", sort=False).head(REFERENCE_ROWS_PER_SEGMENT)


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest file's exact bytes (``_write_json``: indent 2, default=str)."""
    return json.dumps(manifest, indent=2, default=str).encode()


def _fallback_share(table: pd.DataFrame) -> float:
    segments = table[table["segment"] != FALLBACK_KEY]
    rows = segments["train_rows"] + segments["test_rows"]
    total = float(rows.sum())
    own = segments["status"].isin(["trained", "reused", "regressed"])
    return float(rows[~own].sum() / total) if total else 0.0


def _assemble(resolved, plan, fits, run_id, previous):
    """The segment table, the training manifest and the fleet-level test scores.

    Every number comes from the outputs the workers sent back with their models: no model is
    loaded again here.
    """
    spec = resolved.spec
    refit = resolved.refit
    data = resolved.dataset
    classification = data.task == Task.CLASSIFICATION
    classes = [_plain(c) for c in sorted(pd.unique(data.y.dropna()))] if classification else []
    fallback_fit = fits.get(FALLBACK_KEY)
    X_test, y_test = resolved.X_test, resolved.y_test
    routed = _Outputs(X_test.index, classes)  # every test row, as the fleet scores it
    fallback_out = _Outputs(X_test.index, classes)  # every test row, as the fallback scores it
    if fallback_fit is not None and fallback_fit.test_pred is not None:
        fallback_out.put(fallback_fit)
        routed.put(fallback_fit)
    rows: list[dict[str, Any]] = []
    entries: dict[str, Any] = {}
    for segment in plan.segments:
        fit = fits.get(segment.key)
        row = {
            "segment": segment.key,
            "segment_values": segment.values,
            "train_rows": len(segment.train_idx),
            "test_rows": len(segment.test_idx),
            "refit_metric": refit,
            "status": "fallback",
            "error": None if segment.status == "train" else segment.reason,
            "best_params": None, "cv_mean": None, "cv_std": None, "test_metrics": None,
            "model_file": None, "model_sha256": None, "fit_seconds": None, "data_sha256": None,
            "fallback_test_score": None,
        }  # fmt: skip
        if fit is not None:
            row.update(
                status=fit.status,
                error=fit.error,
                best_params=json.dumps(fit.best_params, default=repr, sort_keys=True),
                cv_mean=fit.cv_mean,
                cv_std=fit.cv_std,
                test_metrics=fit.test_scores or None,
                fit_seconds=fit.seconds,
            )
            if fit.sha256 is not None:
                before = previous.get(segment.key)
                regressed = (
                    before is not None
                    and fit.cv_mean is not None
                    and fit.cv_mean < before - REGRESSION_TOLERANCE
                )
                if regressed:
                    row["status"] = "regressed"
                    row["error"] = (
                        f"cv {refit} {fit.cv_mean:.4f} < {before:.4f} of the previous "
                        f"training (tolerance {REGRESSION_TOLERANCE})"
                    )
                entry = _entry(segment.values, fit, run_id, refit)
                row.update(
                    model_file=entry["source"], model_sha256=fit.sha256, data_sha256=fit.data_sha256
                )
                entries[segment.key] = entry
                if fit.test_pred is not None:
                    routed.put(fit)
        if fallback_out.filled and len(segment.test_idx):
            labels = data.X.index[segment.test_idx]
            score = _safe_scores(fallback_out, data.X.loc[labels], data.y.loc[labels], [refit])[
                refit
            ]
            row["fallback_test_score"] = None if math.isnan(score) else score
        rows.append(row)
    fallback_entry = None
    if fallback_fit is not None:
        rows.append(
            {
                "segment": FALLBACK_KEY, "segment_values": [], "status": fallback_fit.status,
                "train_rows": fallback_fit.train_rows, "test_rows": fallback_fit.test_rows,
                "refit_metric": refit, "error": fallback_fit.error,
                "best_params": json.dumps(fallback_fit.best_params, default=repr, sort_keys=True),
                "cv_mean": fallback_fit.cv_mean, "cv_std": fallback_fit.cv_std,
                "test_metrics": fallback_fit.test_scores or None,
                "model_file": (
                    _entry([], fallback_fit, run_id, refit)["source"]
                    if fallback_fit.sha256
                    else None
                ),
                "model_sha256": fallback_fit.sha256, "fit_seconds": fallback_fit.seconds,
                "data_sha256": fallback_fit.data_sha256 if fallback_fit.sha256 else None,
                "fallback_test_score": fallback_fit.test_scores.get(refit),
            }
        )  # fmt: skip
        if fallback_fit.sha256 is not None:
            fallback_entry = _entry([], fallback_fit, run_id, refit)
    table = pd.DataFrame(rows)
    covered = routed.covered()  # fallback "none": rows of small segments have no score
    scores = (
        _safe_scores(routed, X_test[covered], y_test[covered], resolved.scoring)
        if covered.any()
        else {}
    )
    fallback_scores = (
        _safe_scores(fallback_out, X_test, y_test, resolved.scoring) if fallback_out.filled else {}
    )
    manifest = {
        "format": MANIFEST_FORMAT,
        "experiment": spec.name,
        "run_id": run_id,
        "by": plan.by,
        "task": str(data.task.value if hasattr(data.task, "value") else data.task),
        "classes": classes,
        "refit": refit,
        "scoring": resolved.scoring,
        "fallback_policy": plan.fallback,
        "min_rows": plan.min_rows,
        "inputs": _inputs(resolved, plan.by),
        "features": [str(c) for c in resolved.X_train.columns],
        "fallback": fallback_entry,
        "segments": entries,
        "small_segments": sorted(s.key for s in plan.segments if s.status != "train"),
        "config_sha256": _config_sha256(resolved),
        "test_scores": scores,
        "test_rows_scored": int(covered.sum()),
    }
    return table, manifest, scores, fallback_scores


def _entry(values, fit: SegmentFit, run_id: str, refit: str) -> dict[str, Any]:
    if fit.reused is not None:  # referenced, not copied: the file of the run that trained it
        return {**fit.reused, "values": values, "reused_in_run": run_id}
    return {
        "values": values,
        "file": _file_name(fit.key),
        "source": f"runs:/{run_id}/{ARTIFACT_DIR}/{_file_name(fit.key)}",
        "sha256": fit.sha256,
        "types": fit.types,
        "metrics": {
            **{k: v for k, v in fit.cv_metrics.items() if math.isfinite(v)},
            **{f"test_{k}": v for k, v in fit.test_scores.items() if math.isfinite(v)},
        },
        "train_rows": fit.train_rows,
        "best_params": fit.best_params,
        "data_sha256": fit.data_sha256,
        "trained_in_run": run_id,
        "trained_in_version": None,  # set when a version first registers it
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class _Outputs:
    """Outputs already computed for rows (by index label), wearing an estimator's clothes so
    scikit-learn's scorers can score them: no model is loaded or run again."""

    def __init__(self, index: pd.Index, classes: list[Any]) -> None:
        self.classes_ = np.asarray(classes)
        self._estimator_type = "classifier" if classes else "regressor"
        self.position = pd.Series(np.arange(len(index)), index=index)
        self.pred = np.empty(len(index), dtype=object)
        self.proba = np.full((len(index), len(classes)), np.nan) if classes else None
        self.mask = np.zeros(len(index), dtype=bool)
        self.filled = False

    def put(self, fit: SegmentFit) -> None:
        at = self.position.loc[fit.test_index].to_numpy()
        self.pred[at] = fit.test_pred
        if self.proba is not None and fit.test_proba is not None:
            self.proba[at] = fit.test_proba
        self.mask[at] = True
        self.filled = True

    def covered(self) -> np.ndarray:
        return self.mask

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        tags = Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=True))
        if self.classes_.size:
            tags.classifier_tags = ClassifierTags()
        else:
            tags.regressor_tags = RegressorTags()
        return tags

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        values = self.pred[self.position.loc[X.index].to_numpy()]
        return values.astype(float) if not self.classes_.size else np.asarray(values.tolist())

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.proba[self.position.loc[X.index].to_numpy()]

    def fit(self, X, y):  # pragma: no cover - scorers never fit
        return self


def _child_runs(client, experiment_id, parent_id, table, tags) -> dict[str, str]:
    """One finished run per failed or regressed segment (the only per-segment runs)."""
    from mlflow.entities import Metric, Param

    from mlfactory.tracking import owner_tags, retry_on_locked

    inherited = {
        k: v for k, v in tags.items() if k == "mlflow.user" or k.startswith("mlflow.source.")
    }
    children = {}
    for row in table.to_dict("records"):
        if row["status"] not in ("failed", "regressed"):
            continue
        run_tags = {
            **inherited,
            "mlflow.parentRunId": parent_id,
            "mlfactory.role": "segment",
            "mlfactory.segment": row["segment"][:5_000],
            "mlfactory.status": row["status"],
            **owner_tags(),
        }
        if row.get("error"):
            run_tags["mlfactory.error"] = str(row["error"])[:4_000]
        metrics = []
        if row.get("cv_mean") is not None and math.isfinite(row["cv_mean"]):
            metrics.append(Metric(f"cv_{row['refit_metric']}_mean", row["cv_mean"], 0, 0))
        for name, value in (row.get("test_metrics") or {}).items():
            if value is not None and math.isfinite(value):
                metrics.append(Metric(f"test_{name}", float(value), 0, 0))
        params = [Param("segment", row["segment"][:6_000])]
        name = f"segment {row['segment']}"[:250]
        run = retry_on_locked(
            lambda name=name, run_tags=run_tags: client.create_run(
                experiment_id, run_name=name, tags=run_tags
            )
        )
        child = run.info.run_id
        status = "FAILED" if row["status"] == "failed" else "FINISHED"
        _finish_child(client, child, metrics, params, status)
        children[row["segment"]] = child
    return children


def _finish_child(client, child: str, metrics, params, status: str) -> None:
    from mlfactory.tracking import retry_on_locked

    retry_on_locked(lambda: client.log_batch(child, metrics=metrics, params=params))
    retry_on_locked(lambda: client.set_terminated(child, status))


def _sql_rows(
    table: pd.DataFrame, run_id: str, experiment: str, config_sha: str
) -> list[dict[str, Any]]:
    rows = []
    for row in table.to_dict("records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        if isinstance(clean.get("test_metrics"), dict):
            clean["test_metrics"] = {
                k: (v if v is not None and math.isfinite(v) else None)
                for k, v in clean["test_metrics"].items()
            }
        rows.append(
            {"run_id": run_id, "experiment": experiment, "config_sha256": config_sha, **clean}
        )
    return rows


def _log_metrics(client, run_id: str, metrics: dict[str, float]) -> None:
    """Finite metrics in batches within MLflow's limit (1,000 per ``log_batch``)."""
    from mlflow.entities import Metric
    from mlflow.utils.validation import MAX_METRICS_PER_BATCH

    from mlfactory.tracking import retry_on_locked

    stamp = int(time.time() * 1000)
    items = [Metric(k, float(v), stamp, 0) for k, v in metrics.items() if math.isfinite(v)]
    for start in range(0, len(items), MAX_METRICS_PER_BATCH):
        batch = items[start : start + MAX_METRICS_PER_BATCH]
        retry_on_locked(lambda batch=batch: client.log_batch(run_id, metrics=batch))
