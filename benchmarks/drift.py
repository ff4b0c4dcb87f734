"""Data drift at scale, side by side: mlfactory vs a lean scipy script vs Evidently's preset.

    .venv/bin/python benchmarks/drift.py                  # 1M reference + 1M current rows x 20
    .venv/bin/python benchmarks/drift.py --rows 100000    # quick
    .venv/bin/python benchmarks/drift.py --only mlfactory-cli --repeat 5

Data: 15 numeric + 5 categorical columns with 5 planted drifts of known kind and size and 15
clean columns (names say which):

* ``drift_mean_large``  normal, mean shifted by 0.25 sd
* ``drift_mean_small``  normal, mean shifted by 0.05 sd (the one Evidently's default misses)
* ``drift_variance``    normal, standard deviation x 1.15
* ``drift_cat_share``   4 categories, shares .40/.30/.20/.10 -> .34/.30/.20/.16
* ``drift_cat_new``     3 categories, plus a new one on 3% of current rows
* ``clean_*``           normal, log-normal, uniform, integer counts (ties), categories

Generated once (fixed seed) into ``benchmarks/_work/drift-<rows>/`` as parquet. Each contender runs
in its own process that reads both parquet files, tests every column and writes its report. Two
wall times are reported: **process** (measured from outside, from starting the interpreter to its
exit: imports, settings and database included; the figure to compare) and **in process** (read +
test + report, measured by the contender itself, imports excluded):

1. ``mlfactory-cli`` -- the command a user runs, ``mlfactory monitor drift --reference ...
   --current ... --out ...`` (a fresh interpreter with an empty ``MLFACTORY_HOME`` whose database
   is at the schema's head; writes the HTML, the JSON and the ``drift_reports`` row);
2. ``mlfactory`` -- ``detect_drift`` + ``write_report`` (HTML with 20 figures, JSON) in a script;
3. ``scipy``     -- a lean script: ``ks_2samp`` / ``chi2_contingency`` per column + BH, no report;
4. ``evidently`` -- ``Report([DataDriftPreset()])`` + ``save_html``, in its own virtualenv
   (``benchmarks/_work/evidently-venv``; Evidently does not import with pandas 3), created by
   ``--setup-evidently``:  python3.11 -m venv benchmarks/_work/evidently-venv &&
   benchmarks/_work/evidently-venv/bin/pip install "pandas<3" evidently pyarrow

Verdicts are scored against the planted truth (drifted iff the name starts with ``drift_``).
Results go to stdout as a markdown table and to ``benchmarks/_work/drift-<rows>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work"
EVIDENTLY_PYTHON = WORK / "evidently-venv" / "bin" / "python"
SEED = 20260


# Data ----------------------------------------------------------------------------------------


def make_data(rows: int) -> Path:
    """Reference and current parquet files with the planted drifts (cached)."""
    import numpy as np
    import pandas as pd

    folder = WORK / f"drift-{rows}"
    if (folder / "current.parquet").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    def numeric(kind: int, n: int) -> np.ndarray:
        if kind % 4 == 0:
            return rng.normal(10.0, 2.0, n)
        if kind % 4 == 1:
            return rng.lognormal(0.0, 0.7, n)
        if kind % 4 == 2:
            return rng.uniform(-1.0, 1.0, n)
        return rng.poisson(4.0, n).astype(float)  # many ties

    def categories(labels: list[str], shares: list[float], n: int) -> pd.Categorical:
        return pd.Categorical(rng.choice(np.array(labels), n, p=shares))

    frames = []
    for side in ("reference", "current"):
        current = side == "current"
        data: dict[str, object] = {
            "drift_mean_large": rng.normal(0.25 if current else 0.0, 1.0, rows),
            "drift_mean_small": rng.normal(0.05 if current else 0.0, 1.0, rows),
            "drift_variance": rng.normal(0.0, 1.15 if current else 1.0, rows),
        }
        for i in range(12):
            data[f"clean_num_{i:02d}"] = numeric(i, rows)
        four = ["a", "b", "c", "d"]
        data["drift_cat_share"] = categories(
            four, [0.34, 0.30, 0.20, 0.16] if current else [0.40, 0.30, 0.20, 0.10], rows
        )
        data["drift_cat_new"] = categories(
            ["x", "y", "z", "new"] if current else ["x", "y", "z"],
            [0.33, 0.32, 0.32, 0.03] if current else [0.34, 0.33, 0.33],
            rows,
        )
        for i in range(3):
            data[f"clean_cat_{i}"] = categories(
                [f"k{j}" for j in range(3 + 2 * i)], list(np.full(3 + 2 * i, 1 / (3 + 2 * i))), rows
            )
        frame = pd.DataFrame(data)
        frame.to_parquet(folder / f"{side}.parquet")
        frames.append(frame)
    return folder


# Contenders (each in a subprocess) --------------------------------------------------------------


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its children so far (imports included)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run_mlfactory(folder: Path, out: Path) -> dict:
    import pandas as pd

    from mlfactory.monitoring import detect_drift, write_report

    start = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    loaded = time.perf_counter()
    report = detect_drift(reference, current)
    tested = time.perf_counter()
    files = write_report(report, out)
    done = time.perf_counter()
    return {
        "seconds": done - start,
        "read_s": loaded - start,
        "test_s": tested - loaded,
        "report_s": done - tested,
        "drifted": report.drifted_features,
        "html_bytes": files.html.stat().st_size,
        "html_external_links": files.html.read_text().count("http"),
    }


def run_scipy(folder: Path, out: Path) -> dict:
    import numpy as np
    import pandas as pd
    from scipy import stats

    start = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    pvalues = {}
    for column in reference.columns:
        if isinstance(reference[column].dtype, pd.CategoricalDtype):
            table = pd.concat(
                [reference[column].value_counts(), current[column].value_counts()], axis=1
            ).fillna(0)
            pvalues[column] = stats.chi2_contingency(table.to_numpy().T).pvalue
        else:
            pvalues[column] = stats.ks_2samp(reference[column], current[column]).pvalue
    adjusted = stats.false_discovery_control(np.array(list(pvalues.values())), method="bh")
    drifted = [c for c, p in zip(pvalues, adjusted, strict=True) if p < 0.05]
    return {"seconds": time.perf_counter() - start, "drifted": drifted, "html_bytes": 0}


def run_evidently(folder: Path, out: Path) -> dict:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    start = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    out.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out / "evidently.html"))
    seconds = time.perf_counter() - start
    drifted, methods = [], {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if "ValueDrift" not in config.get("type", ""):
            continue
        method, threshold, value = config["method"], config["threshold"], metric["value"]
        methods[config["column"]] = method
        if ("p_value" in method and value < threshold) or (
            "p_value" not in method and value >= threshold
        ):
            drifted.append(config["column"])
    html = out / "evidently.html"
    return {
        "seconds": seconds,
        "drifted": drifted,
        "methods": methods,
        "html_bytes": html.stat().st_size,
        "html_external_links": html.read_text().count("https://"),
    }


CONTENDERS = {
    "mlfactory-cli": None,  # the command itself, run by run_cli
    "mlfactory": run_mlfactory,
    "scipy": run_scipy,
    "evidently": run_evidently,
}


def _worker(name: str, folder: str, out: str) -> None:
    result = CONTENDERS[name](Path(folder), Path(out))
    result["peak_rss_mib"] = _peak_rss_mib()
    result["cpu_s"] = _cpu_seconds()
    print("RESULT " + json.dumps(result))


def run_cli(folder: Path) -> dict:
    """``mlfactory monitor drift`` as a user runs it, timed from outside the process."""
    home, out = folder / "cli-home", folder / "out-mlfactory-cli"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env["MLFACTORY_HOME"] = str(home)
    mlfactory = [sys.executable, "-m", "mlfactory"]
    subprocess.run([*mlfactory, "db", "upgrade"], env=env, check=True, capture_output=True)
    command = [
        *mlfactory,
        "monitor",
        "drift",
        "--reference",
        str(folder / "reference.parquet"),
        "--current",
        str(folder / "current.parquet"),
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: drift found
        return {"error": stderr.strip().splitlines()[-1:], "seconds": None}
    report = json.loads((out / "drift.json").read_text())
    html = out / "drift.html"
    return {
        "seconds": None,  # only the process is timed
        "process_seconds": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "drifted": report["drifted_features"],
        "html_bytes": html.stat().st_size,
        "command": "mlfactory " + " ".join(command[3:]),
    }


def run_contender(name: str, folder: Path) -> dict:
    if name == "mlfactory-cli":
        return run_cli(folder)
    python = str(EVIDENTLY_PYTHON) if name == "evidently" else sys.executable
    out = folder / f"out-{name}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    started = time.perf_counter()
    finished = subprocess.run(
        [python, "-c", f"import drift; drift._worker({name!r}, {str(folder)!r}, {str(out)!r})"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if finished.returncode != 0:
        return {"error": finished.stderr.strip().splitlines()[-1:], "seconds": None}
    line = next(x for x in finished.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["process_seconds"] = time.perf_counter() - started
    return result


def score(drifted: list[str], columns: list[str]) -> dict:
    truth = {c for c in columns if c.startswith("drift_")}
    found = set(drifted)
    right = sum((c in truth) == (c in found) for c in columns)
    return {
        "right": right,
        "total": len(columns),
        "missed": sorted(truth - found),
        "false_alarms": sorted(found - truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", nargs="*", choices=sorted(CONTENDERS), default=None)
    parser.add_argument("--setup-evidently", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each contender; the fastest is kept"
    )
    args = parser.parse_args()
    if args.setup_evidently or not EVIDENTLY_PYTHON.exists():
        subprocess.run(["python3.11", "-m", "venv", str(WORK / "evidently-venv")], check=True)
        pip = str(WORK / "evidently-venv" / "bin" / "pip")
        subprocess.run([pip, "install", "-q", "pandas<3", "evidently", "pyarrow"], check=True)
    folder = make_data(args.rows)
    import pyarrow.parquet as pq

    columns = pq.read_schema(folder / "reference.parquet").names
    load_before = os.getloadavg()
    results = {}
    for name in args.only or list(CONTENDERS):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        runs = [run_contender(name, folder) for _ in range(args.repeat)]
        timed = [r for r in runs if r.get("process_seconds") is not None]
        result = min(timed, key=lambda r: r["process_seconds"]) if timed else runs[0]
        result["process_seconds_all"] = [r.get("process_seconds") for r in runs]
        if "drifted" in result:
            result["score"] = score(result["drifted"], columns)
        results[name] = result
        print(f"  {json.dumps(result)[:400]}", file=sys.stderr, flush=True)
    record = {
        "rows": args.rows,
        "columns": len(columns),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": results,
    }
    (WORK / f"drift-{args.rows}.json").write_text(json.dumps(record, indent=2))
    print(f"\n{args.rows:,} + {args.rows:,} rows x {len(columns)} columns")
    print(
        f"machine: {record['machine']}, load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.1f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.1f}' for x in record['load_average_after'])} after\n"
    )
    print(
        "| contender | process wall s | in-process wall s | CPU s | peak RSS MiB | verdicts right "
        "| missed | false alarms | HTML |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|---:|")
    for name, r in results.items():
        if r.get("process_seconds") is None:
            print(f"| {name} | failed: {r.get('error')} | | | | | | | |")
            continue
        s = r["score"]
        html = f"{r['html_bytes'] / 1e6:.2f} MB" if r.get("html_bytes") else "–"
        inside = f"{r['seconds']:.1f}" if r.get("seconds") is not None else "–"
        print(
            f"| {name} | {r['process_seconds']:.1f} | {inside} | {r['cpu_s']:.1f} "
            f"| {r['peak_rss_mib']:.0f} | {s['right']}/{s['total']} "
            f"| {', '.join(s['missed']) or '–'} | {', '.join(s['false_alarms']) or '–'} | {html} |"
        )
    cli, evidently = results.get("mlfactory-cli", {}), results.get("evidently", {})
    if cli.get("process_seconds") and evidently.get("process_seconds"):
        ratio = evidently["process_seconds"] / cli["process_seconds"]
        print(
            f"\nEvidently / `mlfactory monitor drift`, whole process wall: "
            f"{evidently['process_seconds']:.1f} s / {cli['process_seconds']:.2f} s = {ratio:.1f}x"
        )


if __name__ == "__main__":
    main()
