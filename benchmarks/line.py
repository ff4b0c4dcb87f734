"""The factory line: a full run of a shipped line vs a rerun with nothing changed.

    .venv/bin/python benchmarks/line.py                        # examples/credit_line.toml
    .venv/bin/python benchmarks/line.py --rows 30000 --cli     # bigger data; also time the CLI
    .venv/bin/python benchmarks/line.py --prices 500x24        # the 3.1M-row price store

In a fresh home under ``benchmarks/_work/line-<rows>/``: the line runs once (every stage), then
again with nothing changed (every stage up to date), then once with one hyperparameter changed
(train, gate, promote and what follows). The time of each is measured in-process
(``run_line``); with ``--cli`` also as wall time of ``mlfactory run`` in a subprocess, which adds
Python start-up and imports. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


PRICES_LINE = """
name = "prices-bench"

[dataset]  # the change check covers the whole feature store; the model trains on a slice
name = "stocks"
options = {{ tickers = ["S000"], start = "{train_from}" }}

[train]
spec = "stocks.toml"
overrides = ["search.n_iter=1", "cv.folds=2"]

[gate]
floors = {{}}

[promote]
model = "prices-bench"
onnx = false
"""


def _ingest(settings, tickers: int, start, end) -> int:
    import pandas as pd

    from mlfactory.data import BronzeStore, SyntheticSource, ingest

    frame = pd.DataFrame(
        {
            "ticker": [f"S{i:03d}" for i in range(tickers)],
            "sector": [f"Sector {i % 11}" for i in range(tickers)],
            "subsector": [f"Sub-industry {i % 37}" for i in range(tickers)],
        }
    )
    store = BronzeStore.from_settings(settings, fsync=False)
    report = ingest(store, frame, SyntheticSource(seed=7), start, end, source_name="synthetic")
    if report.failures:
        raise SystemExit(f"ingest failed: {report.failures[:3]}")
    return report.rows_added


def prices(spec: str) -> None:
    """The price store figures: the line's change detection, and one new trading day, each
    against a full featurize of the same store."""
    from datetime import date, timedelta

    from mlfactory.data import featurize
    from mlfactory.line import run_line
    from mlfactory.settings import load_settings

    tickers, years = (int(n) for n in spec.split("x"))
    work = ROOT / "benchmarks" / "_work" / f"line-prices-{tickers}x{years}"
    end = date(2025, 12, 30)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "stocks.toml", work / "stocks.toml")
    line = work / "prices_line.toml"
    line.write_text(PRICES_LINE.format(train_from=end.year))
    settings = load_settings(home=work / ".mlfactory")
    started = time.perf_counter()
    rows = _ingest(settings, tickers, date(end.year - years + 1, 1, 1), end)
    print(f"bronze: {rows:,} rows ingested in {time.perf_counter() - started:.0f} s", flush=True)
    started, cpu = time.perf_counter(), _cpu()
    full = featurize(settings, force=True)
    featurize_s, featurize_cpu = time.perf_counter() - started, _cpu() - cpu
    print(
        f"full featurize: {featurize_s:.2f} s, {featurize_cpu:.2f} CPU s "
        f"({len(full.written)} tickers; load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    run_line(line, settings)  # records every stage once
    table = []

    def timed(label: str, action) -> None:
        started, cpu = time.perf_counter(), _cpu()
        detail = action()
        table.append((label, time.perf_counter() - started, _cpu() - cpu, detail))

    def line_says(dry: bool):
        def go() -> str:
            report = run_line(line, settings, dry_run=dry)
            done = {o.stage: o.status for o in report.stages}
            return ", ".join(f"{s} {v}" for s, v in done.items())

        return go

    timed("line --dry-run, nothing changed", line_says(True))
    timed("line run, nothing changed", line_says(False))
    new_day = end + timedelta(days=1)
    timed(
        f"ingest one new trading day ({new_day})",
        lambda: f"{_ingest(settings, tickers, new_day, new_day):,} rows",
    )

    def refeaturize() -> str:
        report = featurize(settings)
        return (
            f"{len(report.appended)} tickers appended to the delta, "
            f"{len(report.written) - len(report.appended)} rebuilt "
            f"({report.blocks_written} blocks), {len(report.skipped)} up to date"
        )

    timed("featurize after the new day", refeaturize)
    timed("line --dry-run after the new day", line_says(True))
    print(
        f"\n| price store: {tickers} tickers x {years} years, {rows:,} rows | seconds "
        f"| share of a full featurize ({featurize_s:.2f} s) | CPU s | share by CPU "
        f"({featurize_cpu:.2f} CPU s) | what happened |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for label, seconds, cpu, detail in table:
        print(
            f"| {label} | {seconds:.2f} | {100 * seconds / featurize_s:.1f}% | {cpu:.2f} "
            f"| {100 * cpu / featurize_cpu:.1f}% | {detail} |"
        )
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


def _cpu() -> float:
    """CPU seconds (user + system) of this process so far, all its threads, and of its
    finished child processes (featurize's workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line", type=Path, default=ROOT / "examples" / "credit_line.toml")
    parser.add_argument("--rows", type=int, default=5_000, help="rows of the synthetic data")
    parser.add_argument("--cli", action="store_true", help="also time `mlfactory run` (no-op)")
    parser.add_argument(
        "--prices",
        metavar="TICKERSxYEARS",
        help="instead: a stocks line over a synthetic price store (500x24: 3.1M rows); "
        "change detection and one new trading day against a full featurize",
    )
    args = parser.parse_args()
    if args.prices:
        prices(args.prices)
        return

    from mlfactory.line import run_line
    from mlfactory.settings import load_settings

    work = ROOT / "benchmarks" / "_work" / f"line-{args.rows}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    line = work / args.line.name
    shutil.copy(args.line, line)
    settings = load_settings(home=work / ".mlfactory")
    sets = [f"data.rows={args.rows}"]
    rows = []
    for label, extra in (
        ("full run", []),
        ("nothing changed", []),
        ("one hyperparameter", ["train.experiment.seed=7"]),
        ("nothing changed again", ["train.experiment.seed=7"]),
    ):
        started = time.perf_counter()
        report = run_line(line, settings, [*sets, *extra])
        seconds = time.perf_counter() - started
        ran = [o.stage for o in report.stages if o.status == "ran"]
        rows.append((label, seconds, ", ".join(ran) or "(none)"))
    if args.cli:
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "mlfactory"), "run", str(line), "--set", sets[0],
             "--set", "train.experiment.seed=7"],
            check=True, capture_output=True, env={"MLFACTORY_HOME": str(work / ".mlfactory"),
                                                  "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        rows.append(
            ("nothing changed, `mlfactory run` wall time", time.perf_counter() - started, "(none)")
        )
    full = rows[0][1]
    print(f"| {line.name}, {args.rows} rows | seconds | share of the full run | stages that ran |")
    print("|---|---:|---:|---|")
    for label, seconds, ran in rows:
        print(f"| {label} | {seconds:.2f} | {100 * seconds / full:.1f}% | {ran} |")


if __name__ == "__main__":
    main()
