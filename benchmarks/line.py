"""The factory line: a full run of a shipped line vs a rerun with nothing changed.

    .venv/bin/python benchmarks/line.py                        # examples/credit_line.toml
    .venv/bin/python benchmarks/line.py --rows 30000 --cli     # bigger data; also time the CLI

In a fresh home under ``benchmarks/_work/line-<rows>/``: the line runs once (every stage), then
again with nothing changed (every stage up to date), then once with one hyperparameter changed
(train, gate, promote and what follows). The time of each is measured in-process
(``run_line``); with ``--cli`` also as wall time of ``mlfactory run`` in a subprocess, which adds
Python start-up and imports. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line", type=Path, default=ROOT / "examples" / "credit_line.toml")
    parser.add_argument("--rows", type=int, default=5_000, help="rows of the synthetic data")
    parser.add_argument("--cli", action="store_true", help="also time `mlfactory run` (no-op)")
    args = parser.parse_args()

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
