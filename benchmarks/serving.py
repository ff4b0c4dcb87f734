"""Online serving, side by side: ``mlfactory serve`` vs ``mlflow models serve``, same model.

    .venv/bin/python benchmarks/serving.py                 # 10 s per cell
    .venv/bin/python benchmarks/serving.py --seconds 3     # quick

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each cell")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
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


if __name__ == "__main__":
    main()
