"""Model fleets: training 500 segment models, side by side, and serving them.

    .venv/bin/python benchmarks/fleet.py                       # 500 segments x 2,000 rows
    .venv/bin/python benchmarks/fleet.py --segments 50 --naive 50   # a quick look

In a fresh home under ``benchmarks/_work/fleet-<segments>/``, on the same data, grid, folds and
cores (``--jobs``), three ways to fit one LogisticRegression per segment with a small grid
(``C`` in 0.1, 1, 10; 3-fold CV on roc_auc; refit the best; score the segment's test rows):

1. ``mlfactory train`` of a spec with ``[segments]`` (fallback "none", so the fits are the
   same as 2.): packed tasks, one parent run, ``segment_results``, the bundle. Wall time, a new
   experiment each round (nothing reused); then once more with nothing changed (all reused).
2. A bare joblib loop: ``Parallel(n_jobs)`` over segments of ``GridSearchCV(...).fit`` with the
   same pipeline and CV, then the test score. No tracking at all.
3. The naive MLflow approach on the same SQLite store: per segment one run with its params and
   metrics, ``mlflow.sklearn.log_model(..., registered_model_name=...)`` (log + register). Its
   fits are 2.'s (measured there); its MLflow part is timed on ``--naive`` segments and, if
   fewer than all, extrapolated linearly (said so in the output).

Then serving (``--serve``, default on): the fleet registered as one model and served with an LRU
of 50 on a real uvicorn server on 127.0.0.1; single-record ``/predict`` latency of a cached
segment (p50/p95 over 300 requests), the first request of cold segments (each loads and
verifies its file), and one plain model (a segment's pipeline registered alone) served the same
way; the peak RSS of the process. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
GRID = {"clf__C": [0.1, 1.0, 10.0]}
FEATURES = 5

SPEC = """
name = "fleet-bench"
dataset = {{ path = "{path}", target = "y" }}
model = "LogisticRegression"
seed = 0

[cv]
folds = 3
scoring = ["roc_auc"]

[search]
kind = "grid"
param_grid = {{ clf__C = [0.1, 1.0, 10.0] }}

[segments]
by = ["segment"]
min_rows = 100
fallback = "none"
"""


def make_data(segments: int, rows: int, seed: int = 0) -> pd.DataFrame:
    """Each segment its own logistic model of 5 features (weights drawn per segment)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(segments * rows, FEATURES))
    weights = rng.normal(size=(segments, FEATURES))
    which = np.repeat(np.arange(segments), rows)
    logits = (X * weights[which]).sum(axis=1)
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logits))).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(FEATURES)])
    frame.insert(0, "segment", [f"s{i:03d}" for i in which])
    frame["y"] = y
    return frame


def _bare_fit(pipeline, cv, X_tr, y_tr, X_te, y_te):
    from sklearn.base import clone
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(clone(pipeline), GRID, scoring="roc_auc", cv=cv, refit=True, n_jobs=1)
    search.fit(X_tr, y_tr)
    return search.best_estimator_, float(get_scorer("roc_auc")(search.best_estimator_, X_te, y_te))


def bare_loop(resolved, keys, jobs: int):
    from joblib import Parallel, delayed

    X, y = resolved.dataset.X, resolved.dataset.y
    train_keys = keys.iloc[resolved.train_idx]
    test_keys = keys.iloc[resolved.test_idx]
    tr = pd.Series(resolved.train_idx).groupby(train_keys.to_numpy()).apply(np.asarray)
    te = pd.Series(resolved.test_idx).groupby(test_keys.to_numpy()).apply(np.asarray)
    pipeline = resolved.cells[0].pipeline
    started = time.perf_counter()
    fitted = Parallel(n_jobs=jobs)(
        delayed(_bare_fit)(
            pipeline, resolved.cv, X.iloc[tr[k]], y.iloc[tr[k]], X.iloc[te[k]], y.iloc[te[k]]
        )
        for k in tr.index
    )
    return time.perf_counter() - started, dict(zip(tr.index, fitted, strict=True))


def naive_mlflow(settings, fitted: dict, count: int, X_example: pd.DataFrame) -> float:
    """Seconds of the MLflow part for ``count`` segments: run + params + metrics + log_model
    with registration, one segment after another (skops, so mlfactory could load them)."""
    import mlflow

    from mlfactory.serialization import skops_trusted_types
    from mlfactory.tracking import open_tracking, tracking_uri

    open_tracking(settings)
    mlflow.set_tracking_uri(tracking_uri(settings))
    mlflow.set_registry_uri(tracking_uri(settings))
    mlflow.set_experiment("fleet-naive")
    started = time.perf_counter()
    for key in list(fitted)[:count]:
        model, score = fitted[key]
        with mlflow.start_run(run_name=f"segment {key}"):
            mlflow.log_params({"segment": key, "C": model.get_params()["clf__C"]})
            mlflow.log_metric("test_roc_auc", score)
            mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="skops",
                skops_trusted_types=skops_trusted_types(model),
                input_example=X_example,
                registered_model_name=f"naive_{key}",
            )
    return time.perf_counter() - started


def _latency(client, body, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.post("/predict", json=body)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def serve_bench(
    settings, frame: pd.DataFrame, run_id: str | None, requests: int
) -> list[list[str]]:
    import httpx

    from mlfactory.fleet._registry import promote_fleet
    from mlfactory.serving import BackgroundServer
    from mlfactory.serving._app import create_app

    if run_id is not None:
        promote_fleet(settings, "fleet-bench", run_id=run_id)  # registered name: fleet-bench
    features = ["segment", *[f"x{i}" for i in range(FEATURES)]]
    record = lambda key: {  # noqa: E731
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in frame[frame["segment"] == key][features].iloc[0].items()
    }
    rows = []
    fleet = create_app(settings, "fleet-bench", fleet_cache_size=50, log_predictions=False)
    with BackgroundServer(fleet) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        cold = []
        segments = sorted(frame["segment"].unique())
        for key in segments[-20:]:
            started = time.perf_counter()
            assert c.post("/predict", json=[record(key)]).status_code == 200
            cold.append((time.perf_counter() - started) * 1000)
        p50, p95 = _latency(c, [record(segments[-1])], requests)
        rows.append(
            [
                f"fleet ({len(segments)} segments, LRU 50): cached segment",
                f"{p50:.2f}",
                f"{p95:.2f}",
            ]
        )
        rows.append(
            [f"fleet: first request of a cold segment ({len(cold)} segments)",
             f"{statistics.median(cold):.2f}", f"{max(cold):.2f} (max)"]
        )  # fmt: skip
    single = create_app(
        settings, "naive_s000/1", log_predictions=False, allow_unverified=True, onnx=False
    )
    with BackgroundServer(single) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        body = [{k: v for k, v in record("s000").items()}]
        _latency(c, body, 20)  # warm-up
        p50, p95 = _latency(c, body, requests)
        rows.append(
            ["one model (a segment's pipeline registered alone)", f"{p50:.2f}", f"{p95:.2f}"]
        )
    return rows


def _warm() -> int:
    import sklearn.linear_model  # noqa: F401
    import skops.io  # noqa: F401

    import mlfactory.training._search  # noqa: F401

    return 0


def warm_up(jobs: int) -> None:
    """Start joblib's worker processes (and their imports) once, before any timing."""
    from joblib import Parallel, delayed

    Parallel(n_jobs=jobs)(delayed(_warm)() for _ in range(jobs * 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=500)
    parser.add_argument("--rows", type=int, default=2_000, help="rows per segment")
    parser.add_argument("--jobs", type=int, default=2, help="cores for every approach")
    parser.add_argument("--naive", type=int, default=50, help="segments the naive MLflow loop logs")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, choices=(1, 2), help="1: A B, 2: A B B A")
    parser.add_argument("--no-serve", action="store_true")
    parser.add_argument(
        "--serve-only", action="store_true", help="serve what an earlier run left in _work"
    )
    args = parser.parse_args()

    from mlfactory.fleet._plan import dataset_keys
    from mlfactory.settings import load_settings
    from mlfactory.spec import load_spec
    from mlfactory.training import train

    work = ROOT / "benchmarks" / "_work" / f"fleet-{args.segments}"
    if args.serve_only:
        settings = load_settings(home=work / ".mlfactory")
        rows = serve_bench(settings, pd.read_parquet(work / "fleet.parquet"), None, args.requests)
        print("\n| served | p50 (ms) | p95 (ms) |\n|---|---:|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\npeak RSS of this process (both servers): {peak:.0f} MB")
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    settings = load_settings(home=work / ".mlfactory")
    frame = make_data(args.segments, args.rows)
    frame.to_parquet(work / "fleet.parquet")
    spec = work / "fleet.toml"
    spec.write_text(SPEC.format(path=(work / "fleet.parquet").as_posix()))
    print(f"{args.segments} segments x {args.rows} rows, {args.jobs} jobs", file=sys.stderr)

    warm_up(args.jobs)  # both approaches share the warm workers
    resolved = load_spec(spec).resolve(settings)
    keys = dataset_keys(resolved.dataset, ["segment"])
    fleet_times, bare_times = [], []
    for order in ("fb", "bf")[: args.rounds]:  # ABBA: drift of a shared machine hits both
        for which in order:
            if which == "f":  # a new experiment each round: nothing to reuse
                name = f"fleet-bench-{len(fleet_times)}"
                started = time.perf_counter()
                result = train(spec, settings, [f"name={name}"], n_jobs=args.jobs)
                fleet_times.append(time.perf_counter() - started)
            else:
                seconds, fitted = bare_loop(resolved, keys, args.jobs)
                bare_times.append(seconds)
            print(f"{which}: {(fleet_times if which == 'f' else bare_times)[-1]:.1f} s",
                  file=sys.stderr)  # fmt: skip
    fleet_s, bare_s = min(fleet_times), min(bare_times)
    started = time.perf_counter()  # the same experiment again, nothing changed: all reused
    again = train(spec, settings, [f"name={name}"], n_jobs=args.jobs)
    again_s = time.perf_counter() - started
    assert again.summary()["reused"] == args.segments, again.summary()
    ours = result.table.set_index("segment")["test_metrics"].map(lambda m: m["roc_auc"])
    theirs = pd.Series({k: v[1] for k, v in fitted.items()})
    agree = float((ours.loc[theirs.index] - theirs).abs().max())
    count = min(args.naive, len(fitted))
    naive_part = naive_mlflow(settings, fitted, count, resolved.X_train.head(3))
    naive_s = bare_s + naive_part * len(fitted) / count
    note = "" if count == len(fitted) else f" ({count} logged, x{len(fitted) / count:.0f})"
    print(f"\nbest of {len(fleet_times)} (fleet: {', '.join(f'{t:.1f}' for t in fleet_times)} s; "
          f"bare: {', '.join(f'{t:.1f}' for t in bare_times)} s)")  # fmt: skip
    print("\n| approach | wall time (s) | vs bare loop |\n|---|---:|---:|")
    print(f"| bare joblib loop, no tracking | {bare_s:.1f} | 1.00x |")
    print(f"| mlfactory fleet (`mlfactory train`, {result.tasks} tasks) | {fleet_s:.1f} | "
          f"{fleet_s / bare_s:.2f}x |")  # fmt: skip
    print(f"| mlfactory fleet again, nothing changed (all {args.segments} reused, "
          f"{again.tasks} tasks) | {again_s:.1f} | {again_s / bare_s:.2f}x |")  # fmt: skip
    print(f"| naive MLflow: fits + run/log_model/register per segment{note} | {naive_s:.1f} | "
          f"{naive_s / bare_s:.2f}x |")  # fmt: skip
    print(f"\nfleet vs naive MLflow: {naive_s / fleet_s:.1f}x faster; per-segment test roc_auc "
          f"of the fleet and the bare loop differ by at most {agree:.2g}")  # fmt: skip
    summary = {
        "fleet_runs": fleet_times,
        "bare_runs": bare_times,
        "fleet_s": fleet_s,
        "bare_s": bare_s,
        "naive_s": naive_s,
        "again_s": again_s,
        "naive_logged": count,
        "naive_mlflow_s": naive_part,
        "tasks": result.tasks,
        "agree": agree,
    }
    if not args.no_serve:
        rows = serve_bench(settings, frame, result.run_id, args.requests)
        print("\n| served | p50 (ms) | p95 (ms) |\n|---|---:|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        summary["serve"] = rows
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (training, both loops and both servers): {peak:.0f} MB")
    summary["peak_rss_mb"] = peak
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
