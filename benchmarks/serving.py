"""Online serving, side by side: ``mlfactory serve`` vs ``mlflow models serve``, same model.

    .venv/bin/python benchmarks/serving.py                    # one row per zoo family, 10 s/cell
    .venv/bin/python benchmarks/serving.py --seconds 3        # quick
    .venv/bin/python benchmarks/serving.py --families RandomForest,SVM --fallback
    .venv/bin/python benchmarks/serving.py --detail           # the credit model, every variant

Per family (the default): each zoo family is trained once with the ``basic`` recipe on 10,000
synthetic credit rows (Ridge and Lasso, regression only, on synthetic fires rows) and promoted, so
the registry compiles it to ONNX in double and verifies it within 1e-6. Then, for each family,
``mlflow models serve`` and ``mlfactory serve`` (compiled path, prediction log on, as in
production) are measured on the same registered version: 1-row requests at concurrency 1 (p50)
and 16 (requests/s), 100-row requests at concurrency 4 (rows/s); plus onnxruntime in process on
the verified graph (the compiled limit) and scikit-learn in process. ``--fallback`` adds the
scikit-learn path at concurrency 16 with micro-batching off and at its default. Results: a
markdown table on stdout and ``benchmarks/_work/serving_families.json``.

``--detail`` is the earlier benchmark:

One registered model for both: the credit pipeline (``power`` recipe + LogisticRegression) trained
on 20,000 synthetic credit rows, registered as ``credit-bench`` version 1 in a SQLite store under
``benchmarks/_work/serving/`` (built once, reused). Each server runs alone on 127.0.0.1 with one
worker process, started and stopped by this script:

1. ``mlflow`` — ``mlflow models serve -m models:/credit-bench/1 --env-manager local`` with
   ``MLFLOW_TRACKING_URI`` pointing at the same store; body ``{"dataframe_split": ...}``;
2. ``mlfactory /invocations`` — the same body to ``mlfactory serve`` (prediction log on, written
   to the same SQLite database, as in production), and again with the log off;
3. ``mlfactory /predict`` — the typed endpoint with records (class + probabilities returned).

The same asyncio + aiohttp load generator (in this process, so it shares the 2 cores with the
server) drives three cells: 1-row requests at concurrency 1 and 16, 100-row requests at
concurrency 4, each for ``--seconds``. Reported: requests/s, rows/s, p50 and p99 latency.
Answers are checked against the in-process pipeline before timing. In-process ``predict_proba``
on 1-row and 100-row DataFrames gives the floor. Results: stdout (markdown) and
``benchmarks/_work/serving.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from _credit_model import benchmark_settings, ensure_credit_model

WORK = Path(__file__).resolve().parent / "_work" / "serving"
MODEL = "credit-bench-onnx"  # promoted with its verified ONNX graph
ROWS = 20_000
CELLS = [(1, 1), (1, 16), (100, 4)]  # (rows per request, concurrency)


def settings():
    return benchmark_settings(WORK)


def ensure_model() -> None:
    """Train and register the credit model once (kept under WORK)."""
    ensure_credit_model(WORK, MODEL, "credit-bench", rows=ROWS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}); see {log}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"server did not answer within 180 s; see {log}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


async def load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """``concurrency`` clients posting bodies in turn for ``seconds``; latencies in ms.

    aiohttp (C-accelerated HTTP parsing) rather than httpx: an httpx client took a whole core to
    send ~450 requests/s here, so it measured itself, not the server (docs/benchmarks.md).
    """
    import aiohttp

    latencies: list[float] = []
    errors = 0
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker(offset: int, deadline: float) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                i += 1
                began = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    errors += response.status != 200
                latencies.append((time.perf_counter() - began) * 1000)

        warm = time.perf_counter() + min(1.0, seconds / 5)
        await asyncio.gather(*(worker(k, warm) for k in range(concurrency)))
        latencies.clear()
        began = time.perf_counter()
        await asyncio.gather(*(worker(k, began + seconds) for k in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
    }


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its children (the log writer, uvicorn workers)."""
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def log_counts(url: str) -> tuple[float, float] | None:
    """(records written, dropped) by mlfactory's prediction log, from /metrics."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("mlfactory_prediction_log_")
    }
    if not values:
        return None
    return (
        values.get("mlfactory_prediction_log_written_total", 0.0),
        values.get("mlfactory_prediction_log_dropped_total", 0.0),
    )


def split_body(frame) -> bytes:
    return json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()


def records_body(frame) -> bytes:
    rows = frame.astype(object).to_dict(orient="records")
    clean = [{k: (None if v != v else v) for k, v in row.items()} for row in rows]
    return json.dumps(clean).encode()


def in_process(model, X) -> list[dict]:
    out = []
    for rows in (1, 100):
        frame = X.head(rows)
        model.predict_proba(frame)
        timings = []
        deadline = time.perf_counter() + 2.0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            model.predict_proba(frame)
            timings.append((time.perf_counter() - began) * 1000)
        median = percentile(timings, 0.5)
        out.append({"rows": rows, "p50_ms": median, "p99_ms": percentile(timings, 0.99)})
    return out


def detail(args: argparse.Namespace) -> None:
    """The credit LogisticRegression model under every serving variant (``--detail``)."""
    ensure_model()
    from mlfactory.datasets import load_dataset
    from mlfactory.registry import load_model
    from mlfactory.tracking import tracking_uri

    current = settings()
    loaded = load_model(current, f"{MODEL}/1", cache_dir=WORK / "model-cache")
    X = load_dataset("credit", settings=current).X.sample(2_000, random_state=0)
    expected = loaded.model.predict(X.head(100)).tolist()

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = tracking_uri(current)
    env["MLFACTORY_HOME"] = str(current.home)
    env.pop("MLFACTORY_API_KEY", None)
    contenders = []
    port = free_port()
    contenders.append(
        (
            "mlflow models serve",
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}/1",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            f"http://127.0.0.1:{port}", "/invocations", split_body,
        )
    )  # fmt: skip
    launcher = (
        "import sys; from mlfactory.logs import configure_logging; configure_logging('WARNING');"
        "from mlfactory.serving import run_server; from mlfactory.settings import load_settings;"
        f"run_server(load_settings(), '{MODEL}/1', port=int(sys.argv[1]), "
        "log_predictions=sys.argv[2] == 'log', onnx=sys.argv[3] == 'onnx', "
        "batch_max_size=int(sys.argv[4]), workers=int(sys.argv[5]))"
    )
    variants = [  # path, body, prediction log, inference, micro-batch size, workers, label
        ("/invocations", split_body, "log", "sklearn", "0", "1", ""),
        ("/invocations", split_body, "nolog", "sklearn", "0", "1", ", no prediction log"),
        ("/predict", records_body, "log", "sklearn", "0", "1", ""),
        ("/invocations", split_body, "log", "onnx", "0", "1", ", onnx"),
        ("/predict", records_body, "log", "onnx", "0", "1", ", onnx"),
        ("/invocations", split_body, "nolog", "onnx", "0", "1", ", onnx, no log"),
        ("/invocations", split_body, "log", "onnx", "64", "1", ", onnx + micro-batching"),
        ("/invocations", split_body, "log", "onnx", "0", "2", ", onnx, 2 workers"),
    ]
    for path, body, logging_mode, inference, batch, workers, note in variants:
        port = free_port()
        contenders.append(
            (
                f"mlfactory serve {path}{note}",
                [sys.executable, "-c", launcher, str(port), logging_mode, inference, batch,
                 workers],
                f"http://127.0.0.1:{port}", path, body,
            )
        )  # fmt: skip

    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "seconds_per_cell": args.seconds,
        "load_before": os.getloadavg(),
        "servers": [],
    }
    import httpx

    for name, command, url, path, make_body in contenders:
        print(f"starting {name} ...", flush=True)
        slug = "-".join(name.replace("/", "").replace(",", "").split())
        process = start(command, env, url, WORK / f"{slug}.log")
        try:
            check = httpx.post(
                url + path, content=make_body(X.head(100)),
                headers={"content-type": "application/json"}, timeout=60,
            ).json()  # fmt: skip
            got = check["predictions"]
            labels = [p["prediction"] if isinstance(p, dict) else p for p in got]
            assert labels == expected, f"{name} disagrees with the in-process pipeline"
            for rows, concurrency in CELLS:
                bodies = [make_body(X.iloc[i : i + rows]) for i in range(0, 20 * rows, rows)]
                logged_before = log_counts(url) if name.startswith("mlfactory") else None
                cpu_before, began = cpu_seconds(process.pid), time.perf_counter()
                cell = asyncio.run(load(url + path, bodies, concurrency, args.seconds))
                cell["server_cores"] = (cpu_seconds(process.pid) - cpu_before) / (
                    time.perf_counter() - began
                )
                if logged_before is not None:
                    time.sleep(1.0)  # the writer's last batch
                    written, dropped = log_counts(url) or (0.0, 0.0)
                    cell["log_written"] = written - logged_before[0]
                    cell["log_dropped"] = dropped - logged_before[1]
                cell.update({"server": name, "rows": rows, "concurrency": concurrency})
                cell["rows_per_s"] = cell["rps"] * rows
                results["servers"].append(cell)
                logged = (
                    f" logged {cell['log_written']:.0f} dropped {cell['log_dropped']:.0f}"
                    if "log_written" in cell
                    else ""
                )
                print(
                    f"  {rows:>3} rows x{concurrency:>2}: {cell['rps']:8.1f} req/s "
                    f"p50 {cell['p50_ms']:7.2f} ms p99 {cell['p99_ms']:7.2f} ms "
                    f"errors {cell['errors']} server {cell['server_cores']:.2f} cores{logged}",
                    flush=True,
                )
        finally:
            stop(process)
    results["in_process"] = in_process(loaded.model, X)
    results["load_after"] = os.getloadavg()
    (WORK.parent / "serving.json").write_text(json.dumps(results, indent=2))
    print()
    print(
        "| server | rows/request | concurrency | requests/s | rows/s | p50 ms | p99 ms "
        "| server cores | records logged (dropped) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for cell in results["servers"]:
        logged = ""
        if "log_written" in cell:
            logged = f"{cell['log_written']:,.0f} ({cell['log_dropped']:,.0f})"
        print(
            f"| {cell['server']} | {cell['rows']} | {cell['concurrency']} | {cell['rps']:.0f} | "
            f"{cell['rows_per_s']:.0f} | {cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} | "
            f"{cell['server_cores']:.2f} | {logged} |"
        )
    for item in results["in_process"]:
        print(
            f"| in-process predict_proba | {item['rows']} | 1 | {1000 / item['p50_ms']:.0f} | "
            f"{1000 / item['p50_ms'] * item['rows']:.0f} | {item['p50_ms']:.2f} | "
            f"{item['p99_ms']:.2f} | | |"
        )


# One row per family ---------------------------------------------------------------------------
FAMILY_ROWS = 10_000
CLASSIFIERS = ["LogisticRegression", "NaiveBayes", "KNN", "RandomForest", "HistGradientBoosting",
               "SVM", "NeuralNet"]  # fmt: skip
REGRESSORS = ["Ridge", "Lasso"]  # regression-only families, on the fires data
FAMILY_SPEC = """
name = "bench-b-{model}"
dataset = "{dataset}"
preprocessing = "{recipe}"
model = "{model}"
seed = 0
[cv]
folds = 2
scoring = ["{metric}"]
[search]
kind = "none"
"""


def family_model(model: str, recompile: bool = False) -> tuple[str, str]:
    """Train and promote ``model`` once (credit, or fires for the regression-only families);
    the registered reference (``NAME/VERSION``) and the dataset. ``recompile`` promotes the
    same run again, so the registry compiles it with today's converters (a new version)."""
    from mlfactory.datasets import write_synthetic
    from mlfactory.exceptions import ModelNotFound
    from mlfactory.registry import parse_model_ref, promote, resolve_version
    from mlfactory.tracking import open_tracking
    from mlfactory.training import train

    current = settings()
    dataset = "fires" if model in REGRESSORS else "credit"
    name = f"bench-b-{model.lower()}"
    try:
        info = resolve_version(open_tracking(current), parse_model_ref(f"{name}@champion"))
        if recompile:
            print(f"promoting {name} version {info.version}'s run again ...", flush=True)
            info = promote(current, name, run_id=info.run_id)
        return f"{name}/{info.version}", dataset
    except ModelNotFound:
        pass
    WORK.mkdir(parents=True, exist_ok=True)
    marker = WORK / f"{dataset}.written"
    if not marker.exists():
        write_synthetic(dataset, FAMILY_ROWS, settings=current)
        marker.touch()
    spec = WORK / f"bench-b-{model}.toml"
    metric = "r2" if dataset == "fires" else "roc_auc"
    spec.write_text(FAMILY_SPEC.format(model=model, dataset=dataset, recipe="basic", metric=metric))
    print(f"training {model} on {FAMILY_ROWS:,} {dataset} rows ...", flush=True)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # HistGradientBoosting's threads cost 6x on 2 shared cores
        info = promote(current, name, run_id=train(spec, current).run_id)
    return f"{name}/{info.version}", dataset


def compiled_limit(loaded, X) -> dict:
    """In-process onnxruntime on the verified graph: 1-row p50 and 100-row rows/s."""
    from mlfactory.compile import onnx_feed
    from mlfactory.serving._onnx import build_predictor

    predictor = build_predictor(settings(), loaded, onnx=True)
    if predictor.kind != "onnx":
        return {"kind": predictor.kind, "reason": predictor.reason}
    out = {"kind": "onnx"}
    for rows in (1, 100):
        feed = onnx_feed(X.head(rows), loaded.inputs)
        session = predictor._session
        session.run(None, feed)
        timings = []
        deadline = time.perf_counter() + 2.0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            session.run(None, feed)
            timings.append((time.perf_counter() - began) * 1000)
        out[f"p50_ms_{rows}"] = percentile(timings, 0.5)
    out["rps_1"] = 1000 / out["p50_ms_1"]
    out["rows_per_s_100"] = 100 * 1000 / out["p50_ms_100"]
    return out


def sklearn_limit(model, X) -> dict:
    out = {}
    for rows in (1, 100):
        frame = X.head(rows)
        model.predict(frame)
        timings = []
        deadline = time.perf_counter() + 2.0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            model.predict_proba(frame) if hasattr(model, "predict_proba") else model.predict(frame)
            timings.append((time.perf_counter() - began) * 1000)
        out[f"p50_ms_{rows}"] = percentile(timings, 0.5)
    return out


FAMILY_CELLS = [(1, 1), (1, 16), (100, 4)]


def measure(name, command, url, path, bodies_for, seconds, env, log, cells=FAMILY_CELLS) -> dict:
    process = start(command, env, url, log)
    out = {}
    try:
        for rows, concurrency in cells:
            bodies = bodies_for(rows)
            cell = asyncio.run(load(url + path, bodies, concurrency, seconds))
            cell["rows_per_s"] = cell["rps"] * rows
            out[f"{rows}x{concurrency}"] = cell
            print(
                f"  {name:<28} {rows:>3} rows x{concurrency:>2}: {cell['rps']:8.1f} req/s "
                f"p50 {cell['p50_ms']:7.2f} ms p99 {cell['p99_ms']:7.2f} ms "
                f"errors {cell['errors']}",
                flush=True,
            )
    finally:
        stop(process)
    return out


def families(args: argparse.Namespace) -> None:
    """One row per zoo family: MLflow vs mlfactory's compiled path (and its fallback)."""
    from mlfactory.datasets import load_dataset
    from mlfactory.registry import load_model
    from mlfactory.tracking import tracking_uri

    current = settings()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = tracking_uri(current)
    env["MLFACTORY_HOME"] = str(current.home)
    env.pop("MLFACTORY_API_KEY", None)
    launcher = (
        "import sys; from mlfactory.logs import configure_logging; configure_logging('WARNING');"
        "from mlfactory.serving import run_server; from mlfactory.settings import load_settings;"
        "run_server(load_settings(), sys.argv[1], port=int(sys.argv[2]), "
        "onnx=sys.argv[3] == 'onnx', batch_max_size=None if sys.argv[4] == 'auto' "
        "else int(sys.argv[4]))"
    )
    wanted = args.families.split(",") if args.families != "all" else CLASSIFIERS + REGRESSORS
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "seconds_per_cell": args.seconds,
        "load_before": os.getloadavg(),
        "families": {},
    }
    out_file = WORK.parent / "serving_families.json"
    if out_file.exists() and args.resume:
        results["families"] = json.loads(out_file.read_text()).get("families", {})
    for family in wanted:
        if family in results["families"]:
            continue
        ref, dataset = family_model(family, args.recompile)
        name = ref.split("/")[0]
        loaded = load_model(current, ref, cache_dir=WORK / "model-cache" / ref.replace("/", "-"))
        X = load_dataset(dataset, settings=current).X.sample(2_000, random_state=0)
        status = loaded.info.tags.get("onnx_status", "")
        row = {"dataset": dataset, "model": ref, "onnx_status": status}
        row["compiled_limit"] = compiled_limit(loaded, X)
        row["sklearn_limit"] = sklearn_limit(loaded.model, X)

        def bodies_for(rows: int, X=X) -> list[bytes]:
            return [split_body(X.iloc[i : i + rows]) for i in range(0, 20 * rows, rows)]

        print(f"{family}: {row['onnx_status'][:80]}", flush=True)
        port = free_port()
        row["mlflow"] = measure(
            "mlflow models serve",
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{ref}",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            f"http://127.0.0.1:{port}", "/invocations", bodies_for, args.seconds, env,
            WORK / f"{name}-mlflow.log",
        )  # fmt: skip
        port = free_port()
        row["mlfactory"] = measure(
            "mlfactory serve",
            [sys.executable, "-c", launcher, ref, str(port), "onnx", "auto"],
            f"http://127.0.0.1:{port}", "/invocations", bodies_for, args.seconds, env,
            WORK / f"{name}-mlfactory.log",
        )  # fmt: skip
        if args.fallback:
            for batch in ("0", "auto"):
                port = free_port()
                row[f"fallback_batch_{batch}"] = measure(
                    f"mlfactory --no-onnx, batch {batch}",
                    [sys.executable, "-c", launcher, ref, str(port), "sklearn", batch],
                    f"http://127.0.0.1:{port}", "/invocations", bodies_for, args.seconds, env,
                    WORK / f"{name}-fallback-{batch}.log", cells=[(1, 16)],
                )  # fmt: skip
        results["families"][family] = row
        results["load_after"] = os.getloadavg()
        out_file.write_text(json.dumps(results, indent=2))
    print_families(results)


def print_families(results: dict) -> None:
    print()
    print(
        "| family | path | req/s c=16 (MLflow) | ratio | p50 ms c=1 (MLflow) | rows/s 100-row "
        "(MLflow) | ratio | compiled limit: 1-row req/s, 100-row rows/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for family, row in results["families"].items():
        ours, theirs = row["mlfactory"], row["mlflow"]
        limit = row["compiled_limit"]
        path = "ONNX" if limit.get("kind") == "onnx" else "scikit-learn"
        c16 = ours["1x16"]["rps"] / theirs["1x16"]["rps"]
        r100 = ours["100x4"]["rows_per_s"] / theirs["100x4"]["rows_per_s"]
        lim = f"{limit['rps_1']:,.0f}, {limit['rows_per_s_100']:,.0f}" if path == "ONNX" else "—"
        print(
            f"| {family} | {path} | {ours['1x16']['rps']:,.0f} ({theirs['1x16']['rps']:,.0f}) "
            f"| **{c16:.1f}x** | {ours['1x1']['p50_ms']:.2f} ({theirs['1x1']['p50_ms']:.2f}) "
            f"| {ours['100x4']['rows_per_s']:,.0f} ({theirs['100x4']['rows_per_s']:,.0f}) "
            f"| {r100:.1f}x | {lim} |"
        )
    if any("fallback_batch_0" in row for row in results["families"].values()):
        print()
        print(
            "| family | fallback, no micro-batching: req/s, p99 ms | fallback, micro-batching "
            "(default): req/s, p99 ms | MLflow: req/s, p99 ms |"
        )
        print("|---|---:|---:|---:|")
        for family, row in results["families"].items():
            if "fallback_batch_0" not in row:
                continue
            off, on = row["fallback_batch_0"]["1x16"], row["fallback_batch_auto"]["1x16"]
            ml = row["mlflow"]["1x16"]
            print(
                f"| {family} | {off['rps']:,.0f}, {off['p99_ms']:.0f} | {on['rps']:,.0f}, "
                f"{on['p99_ms']:.0f} | {ml['rps']:,.0f}, {ml['p99_ms']:.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each cell")
    parser.add_argument(
        "--families",
        default="all",
        help="comma-separated zoo families for the per-family table (default: all)",
    )
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="also measure each family on the scikit-learn path, micro-batching off and on",
    )
    parser.add_argument("--resume", action="store_true", help="keep families already measured")
    parser.add_argument(
        "--recompile",
        action="store_true",
        help="promote each family's model again first, so today's converters compile it",
    )
    parser.add_argument(
        "--detail",
        action="store_true",
        help="instead: the credit LogisticRegression under every serving variant",
    )
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if args.detail:
        detail(args)
    else:
        families(args)


if __name__ == "__main__":
    main()
