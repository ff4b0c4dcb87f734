"""Silver features, side by side: naive Dask reference vs mlfactory ``featurize`` vs polars.

    .venv/bin/python benchmarks/features.py                        # 500 tickers x 24 years
    .venv/bin/python benchmarks/features.py --tickers 50 --years 5 # quick, small
    .venv/bin/python benchmarks/features.py --store s3://bucket/prefix --tickers 50 --years 5
    .venv/bin/python benchmarks/features.py --store moto --tickers 50 --years 5  # self-contained

``--store URL`` measures the object store instead: the same bronze data ingested into
``URL/bronze/prices`` (credentials: the standard AWS variables; endpoint:
``MLFACTORY_S3_ENDPOINT_URL``; ``moto`` starts moto's S3 server on a loopback port), then
``featurize`` (local threads, ``force``) on the local store and on the object store, and a rerun
with nothing changed. It reports the wall-time ratio and every S3 request of each featurize by
operation (counted in the client): listing requests should be zero whatever the partition count.

The bronze store is generated once with mlfactory's synthetic source and ``ingest`` and cached in
``benchmarks/_work/``. Each contender runs in its own subprocess so that its wall time and peak
memory (RSS of the process and its children, sampled every 20 ms) are measured separately:

1. ``reference`` — the naive pipeline: Dask ``read_parquet`` of all bronze files,
   ``set_index('ticker')``, a ``groupby('ticker').apply`` for the lag features, a second one for
   the target, ``repartition(npartitions=500)``, ``to_parquet``. It shifts rows in file-listing
   order, so its values are not checked (only its row count);
2. ``ours`` — ``mlfactory.data.featurize`` (local threads and local processes); with ``--cli``
   also ``ours-cli``: ``mlfactory data featurize --force`` as a user types it (a fresh process:
   Python start-up and imports included, like the polars contender's process);
3. ``polars`` — a hand-written single-process polars version of the same features (the limit).

Our output is checked value by value against polars'. Results go to stdout as a markdown table
and to ``benchmarks/_work/features-<T>x<Y>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import warnings
from datetime import date
from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work"
WINDOWS = (10,)
FLOAT_FEATURES = ["close_lag_1", "adj_close_lag_1", "returns", "hi_lo_range", "returns_mean_10"]
FLAG_FEATURES = ["positive_return", "target"]
SECTORS = [
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
]


# Data ----------------------------------------------------------------------------------------


def make_bronze(tickers: int, years: int) -> tuple[Path, int]:
    """Synthetic bronze store of ``tickers`` x ``years`` (cached); returns its folder and rows."""
    import pandas as pd
    import pyarrow.dataset as ds

    from mlfactory.data import BronzeStore, SyntheticSource, ingest

    root = WORK / f"bronze-{tickers}x{years}"
    done = root / "_complete"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        frame = pd.DataFrame(
            {
                "ticker": [f"S{i:03d}" for i in range(tickers)],
                "sector": [SECTORS[i % len(SECTORS)] for i in range(tickers)],
                "subsector": [f"Sub-industry {i % 37}" for i in range(tickers)],
            }
        )
        end = date(2025, 12, 31)
        start = date(end.year - years + 1, 1, 1)
        print(f"generating bronze {tickers} tickers x {years} years into {root} …", flush=True)
        started = time.perf_counter()
        report = ingest(BronzeStore(root, fsync=False), frame, SyntheticSource(seed=7), start, end)
        if report.failures:
            raise SystemExit(f"ingest failed: {report.failures[:3]}")
        print(f"  generated in {time.perf_counter() - started:.0f}s", flush=True)
        done.write_text("ok")
    rows = ds.dataset(root, format="parquet", partitioning="hive").count_rows()
    return root, rows


# Contenders (each runs in its own subprocess) ---------------------------------------------


def run_reference(bronze: Path, out: Path) -> None:
    import dask.dataframe as dd
    import pandas as pd

    def lag_features(x: pd.DataFrame) -> pd.DataFrame:
        x = x.assign(
            close_lag_1=x["close"].shift(1),
            adj_close_lag_1=x["adj_close"].shift(1),
            hi_lo_range=x["high"] - x["low"],
        )
        x["returns"] = x["adj_close"] / x["adj_close_lag_1"] - 1
        x["positive_return"] = (x["returns"] > 0).astype("int8")
        x["returns_mean_10"] = x["returns"].rolling(10, min_periods=10).mean()
        return x

    ddf = dd.read_parquet(str(bronze))
    ddf = ddf.set_index("ticker")
    meta = lag_features(ddf._meta.copy())
    ddf = ddf.groupby("ticker", group_keys=False).apply(lag_features, meta=meta)
    meta = meta.assign(target=pd.Series(dtype="float64"))
    ddf = ddf.groupby("ticker", group_keys=False).apply(
        lambda x: x.assign(target=x["positive_return"].shift(-1)), meta=meta
    )
    ddf = ddf.repartition(npartitions=500)
    ddf.to_parquet(str(out))


def run_ours(bronze: Path, out: Path, scheduler: str) -> None:
    from mlfactory.data import featurize

    report = featurize(
        bronze_dir=bronze, silver_dir=out, windows=WINDOWS, scheduler=scheduler, force=True
    )
    if report.failures:
        raise SystemExit(f"featurize failed: {report.failures[:3]}")


def run_polars(bronze: Path, out: Path) -> None:
    import polars as pl

    w = WINDOWS[0]
    frame = (
        pl.scan_parquet(f"{bronze}/**/*.parquet", hive_partitioning=True)
        .drop("year")
        .sort(["ticker", "date"])
        .with_columns(
            close_lag_1=pl.col("close").shift(1).over("ticker"),
            adj_close_lag_1=pl.col("adj_close").shift(1).over("ticker"),
            hi_lo_range=pl.col("high") - pl.col("low"),
        )
        .with_columns(returns=pl.col("adj_close") / pl.col("adj_close_lag_1") - 1)
        .with_columns(
            positive_return=(pl.col("returns") > 0).cast(pl.Int8),
            returns_mean_10=pl.col("returns").rolling_mean(w, min_samples=w).over("ticker"),
        )
        .with_columns(target=pl.col("positive_return").shift(-1).over("ticker"))
        .collect()
    )
    frame.write_parquet(out, partition_by="ticker")


def child(args: argparse.Namespace) -> None:
    """Run one contender and print its own timing as the last line of JSON."""
    warnings.simplefilter("ignore")
    bronze, out = Path(args.bronze), Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    if args.run == "reference":
        run_reference(bronze, out)
    elif args.run == "polars":
        run_polars(bronze, out)
    else:
        run_ours(bronze, out, args.run.split("-", 1)[1])
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    print(
        json.dumps(
            {
                "work_seconds": seconds,
                "cpu_seconds": cpu,
                "maxrss_mb": own.ru_maxrss / 1024,
                "children_maxrss_mb": kids.ru_maxrss / 1024,
            }
        )
    )


# Parent: measure, compare, report ---------------------------------------------------------


def cli_store(bronze: Path, tag: str) -> Path:
    """A store root for ``mlfactory data featurize``: bronze/prices links to the cached bronze."""
    root = WORK / f"cli-store-{tag}"
    (root / "bronze").mkdir(parents=True, exist_ok=True)
    link = root / "bronze" / "prices"
    if not link.is_symlink():
        link.symlink_to(bronze.resolve(), target_is_directory=True)
    return root


def measure(name: str, bronze: Path, out: Path, timeout: float) -> dict:
    import psutil

    command = [sys.executable, __file__, "--run", name, "--bronze", str(bronze), "--out", str(out)]
    env = None
    if name == "ours-cli":  # the command a user types, in a fresh process: imports included
        shutil.rmtree(out, ignore_errors=True)  # like the others: a fresh silver store
        root = out.parents[1]
        command = [str(Path(sys.executable).parent / "mlfactory"), "data", "featurize", "--force"]
        env = {
            **os.environ,
            "MLFACTORY_HOME": str(root / "home"),
            "MLFACTORY_STORE_URL": str(root),
        }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    watched = psutil.Process(process.pid)
    peak = 0
    timed_out = False
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            rss = 0
            for member in tree:
                with contextlib.suppress(psutil.Error):
                    rss += member.memory_info().rss
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if time.perf_counter() - started > timeout:
            timed_out = True
            for member in [*watched.children(recursive=True), watched]:
                with contextlib.suppress(psutil.Error):
                    member.kill()
            break
        time.sleep(0.02)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    result = {"name": name, "wall_seconds": wall, "peak_rss_mb": peak / 2**20, "ok": False}
    if timed_out:
        result["error"] = f"timed out after {timeout:.0f}s"
    elif process.returncode != 0:
        result["error"] = (stderr or stdout).strip().splitlines()[-1:] or ["failed"]
    elif name == "ours-cli":
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        result.update(work_seconds=wall, cpu_seconds=cpu, ok=True)
    else:
        result.update(json.loads(stdout.strip().splitlines()[-1]), ok=True)
    return result


def compare_with_polars(ours: Path, polars: Path) -> dict:
    """Max absolute difference of every feature between our output and polars'."""
    import numpy as np
    import pyarrow.dataset as ds

    def load(path: Path, partitioning: str | None):
        # polars also stores ticker inside each file; ours only in the hive path
        table = ds.dataset(path, format="parquet", partitioning=partitioning).to_table(
            columns=["ticker", "date", *FLOAT_FEATURES, *FLAG_FEATURES]
        )
        return table.sort_by([("ticker", "ascending"), ("date", "ascending")])

    a, b = load(ours, "hive"), load(polars, None)
    report: dict = {"rows_ours": a.num_rows, "rows_polars": b.num_rows}
    same_keys = a.num_rows == b.num_rows and all(
        a.column(k).cast("string").equals(b.column(k).cast("string")) for k in ("ticker", "date")
    )
    report["same_keys"] = same_keys
    if not same_keys:
        report["identical"] = False
        return report
    worst = 0.0
    nulls_agree = True
    for name in FLOAT_FEATURES + FLAG_FEATURES:
        x = a.column(name).to_numpy(zero_copy_only=False).astype(float)
        y = b.column(name).to_numpy(zero_copy_only=False).astype(float)
        nulls_agree &= bool((np.isnan(x) == np.isnan(y)).all())
        both = ~np.isnan(x) & ~np.isnan(y)
        if both.any():
            scale = np.maximum(1.0, np.abs(y[both]))
            worst = max(worst, float(np.max(np.abs(x[both] - y[both]) / scale)))
    report.update(max_rel_diff=worst, nulls_agree=nulls_agree)
    report["identical"] = nulls_agree and worst < 1e-9
    return report


def machine() -> str:
    import psutil

    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{memory:.0f} GiB RAM, Python {platform.python_version()}, load average before: {load}"
    )


# Object store: local vs S3 ----------------------------------------------------------------


class _RequestCounter:
    """Counts every S3 API call of the process's s3fs filesystems, by operation (s3fs's
    ``_call_s3`` wrapped at class level: every instance, every thread)."""

    def __init__(self) -> None:
        from collections import Counter

        import s3fs

        self.calls: Counter[str] = Counter()
        original = s3fs.S3FileSystem._call_s3
        calls = self.calls

        async def counted(fs, method, *args, **kwargs):
            calls[method] += 1
            return await original(fs, method, *args, **kwargs)

        s3fs.S3FileSystem._call_s3 = counted

    def take(self) -> dict[str, int]:
        found = dict(sorted(self.calls.items()))
        self.calls.clear()
        return found


def _start_moto() -> tuple[object, str, str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["MLFACTORY_S3_ENDPOINT_URL"] = endpoint
    import s3fs

    s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True).mkdir("bench")
    return server, endpoint, "s3://bench/features"


def run_store(args: argparse.Namespace) -> None:
    """featurize on the local store vs on an object store, and its S3 requests."""
    import logging

    import pandas as pd

    from mlfactory.data import BronzeStore, SyntheticSource, featurize, ingest
    from mlfactory.settings import load_settings

    logging.getLogger("mlfactory").setLevel(logging.WARNING)
    server = None
    store = args.store
    if store == "moto":
        server, _, store = _start_moto()
    settings = load_settings(store_url=store)
    bronze_local, rows = make_bronze(args.tickers, args.years)
    tag = f"{args.tickers}x{args.years}"
    remote_bronze = f"{store.rstrip('/')}/bronze-{tag}"
    remote_silver = f"{store.rstrip('/')}/silver-{tag}"
    counter = _RequestCounter()
    target = BronzeStore(remote_bronze, settings=settings, fsync=False)
    if not target.indexed or len(target.index()) == 0:
        frame = pd.DataFrame(
            {
                "ticker": [f"S{i:03d}" for i in range(args.tickers)],
                "sector": [SECTORS[i % len(SECTORS)] for i in range(args.tickers)],
                "subsector": [f"Sub-industry {i % 37}" for i in range(args.tickers)],
            }
        )
        end = date(2025, 12, 31)
        start = date(end.year - args.years + 1, 1, 1)
        started = time.perf_counter()
        ingest(target, frame, SyntheticSource(seed=7), start, end)
        print(f"ingested into {remote_bronze} in {time.perf_counter() - started:.1f}s")
    partitions = len(BronzeStore(remote_bronze, settings=settings).index())
    counter.take()

    def timed(**kwargs) -> tuple[float, dict[str, int]]:
        started = time.perf_counter()
        report = featurize(settings, windows=WINDOWS, scheduler="threads", **kwargs)
        if report.failures:
            raise SystemExit(f"featurize failed: {report.failures[:3]}")
        return time.perf_counter() - started, counter.take()

    local_out = WORK / f"out-store-local-{tag}"
    shutil.rmtree(local_out, ignore_errors=True)
    runs = {}
    for _ in range(args.repeats):
        runs.setdefault("local", []).append(
            timed(bronze_dir=bronze_local, silver_dir=local_out, force=True)[0]
        )
        seconds, calls = timed(bronze_dir=remote_bronze, silver_dir=remote_silver, force=True)
        runs.setdefault("s3", []).append(seconds)
        runs["s3_calls"] = calls
    unchanged, unchanged_calls = timed(bronze_dir=remote_bronze, silver_dir=remote_silver)
    local_best, s3_best = min(runs["local"]), min(runs["s3"])
    listing = ("list_objects_v2", "list_objects")
    result = {
        "rows": rows,
        "tickers": args.tickers,
        "partitions": partitions,
        "store": "moto (loopback)" if server is not None else store,
        "local_seconds": local_best,
        "s3_seconds": s3_best,
        "ratio": s3_best / local_best,
        "s3_requests_featurize": runs["s3_calls"],
        "s3_requests_unchanged": unchanged_calls,
        "unchanged_seconds": unchanged,
        "listing_requests": sum(runs["s3_calls"].get(op, 0) for op in listing)
        + sum(unchanged_calls.get(op, 0) for op in listing),
    }
    print(
        f"{rows:,} rows, {args.tickers} tickers, {partitions} bronze partitions; "
        f"{machine()}\n"
        f"| store | featurize s (best of {args.repeats}) | S3 requests |\n|---|---:|---|\n"
        f"| local | {local_best:.2f} | - |\n"
        f"| {result['store']} | {s3_best:.2f} ({result['ratio']:.1f}x) | "
        f"{sum(runs['s3_calls'].values())}: {runs['s3_calls']} |\n"
        f"| {result['store']}, nothing changed | {unchanged:.2f} | "
        f"{sum(unchanged_calls.values())}: {unchanged_calls} |\n"
        f"listing requests: {result['listing_requests']}"
    )
    (WORK / f"features-store-{tag}.json").write_text(json.dumps(result, indent=2))
    if server is not None:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=24)
    parser.add_argument(
        "--reference-timeout", type=float, default=900, help="seconds before killing the reference"
    )
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--schedulers", default="threads,processes", help="Dask schedulers tried for ours"
    )
    parser.add_argument("--prepare-only", action="store_true", help="only generate bronze")
    parser.add_argument(
        "--cli",
        action="store_true",
        help="also time `mlfactory data featurize --force` in its own process (imports included)",
    )
    parser.add_argument(
        "--store",
        help="s3://bucket/prefix (or 'moto'): local vs object-store featurize and its requests",
    )
    parser.add_argument("--repeats", type=int, default=2, help="featurize runs per store")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--bronze", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        child(args)
        return

    WORK.mkdir(parents=True, exist_ok=True)
    if args.store:
        run_store(args)
        return
    bronze, rows = make_bronze(args.tickers, args.years)
    tag = f"{args.tickers}x{args.years}"
    if args.prepare_only:
        return
    host = machine()
    print(f"bronze: {rows:,} rows, {args.tickers} tickers x {args.years} years; {host}")
    names = [f"ours-{s}" for s in args.schedulers.split(",")] + ["polars"]
    if args.cli:
        names.insert(-1, "ours-cli")
    if not args.skip_reference:
        names.insert(0, "reference")
    results = {}
    outs = {name: WORK / f"out-{name}-{tag}" for name in names}
    if args.cli:
        outs["ours-cli"] = cli_store(bronze, tag) / "silver" / "features"
    for name in names:
        out = outs[name]
        timeout = args.reference_timeout if name == "reference" else 3600
        results[name] = measure(name, bronze, out, timeout)
        r = results[name]
        print(
            f"  {name:<16} wall {r['wall_seconds']:7.1f}s  work {r.get('work_seconds', 0):7.1f}s"
            f"  CPU {r.get('cpu_seconds', 0):7.1f}s"
            f"  peak RSS {r['peak_rss_mb']:7.0f} MB  {r.get('error', '')}",
            flush=True,
        )
    ours_names = [n for n in names if n.startswith("ours") and results[n]["ok"]]
    best = min(ours_names, key=lambda n: results[n]["wall_seconds"])
    check = compare_with_polars(outs[best], outs["polars"])

    lines = [
        f"{rows:,} rows ({args.tickers} tickers x {args.years} years), {host}",
        "",
        "| contender | wall s | work s | CPU s | peak RSS MB | reference / this "
        "(wall, CPU) | this / polars (wall, CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ref = results.get("reference")
    pol = results["polars"]
    for name in names:
        r = results[name]
        if not r["ok"]:
            lines.append(
                f"| {name} | > {r['wall_seconds']:.0f} ({r.get('error')}) | | | "
                f"{r['peak_rss_mb']:.0f} | | |"
            )
            continue
        if ref is not None and ref["ok"]:
            vs_ref = (
                f"{ref['wall_seconds'] / r['wall_seconds']:.1f}x, "
                f"{ref['cpu_seconds'] / r['cpu_seconds']:.1f}x"
            )
        elif ref is not None:  # timed out: a lower bound on wall time
            vs_ref = f"> {ref['wall_seconds'] / r['wall_seconds']:.1f}x"
        else:
            vs_ref = ""
        vs_pol = (
            f"{r['wall_seconds'] / pol['wall_seconds']:.2f}x, "
            f"{r['cpu_seconds'] / pol['cpu_seconds']:.2f}x"
            if pol["ok"]
            else ""
        )
        lines.append(
            f"| {name} | {r['wall_seconds']:.1f} | {r['work_seconds']:.1f} | "
            f"{r['cpu_seconds']:.1f} | {r['peak_rss_mb']:.0f} | {vs_ref} | {vs_pol} |"
        )
    lines += [
        "",
        f"correctness ({best} vs polars): {json.dumps(check)}",
    ]
    print("\n".join(lines))
    (WORK / f"features-{tag}.json").write_text(
        json.dumps({"rows": rows, "results": results, "check": check}, indent=2)
    )


if __name__ == "__main__":
    main()
