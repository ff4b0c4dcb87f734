"""How long ``mlfactory --help`` and ``mlfactory GROUP --help`` take to start.

    .venv/bin/python benchmarks/cli_startup.py            # 7 runs of each command
    .venv/bin/python benchmarks/cli_startup.py --runs 15 --importtime

Each command runs in a fresh interpreter (``python -m mlfactory ...``) in an empty folder with an
empty ``MLFACTORY_HOME``; the table gives the best and median wall time and the median CPU time
(user + system of the child, from ``wait4``). CPU time is the steady figure on a shared machine:
wall time also measures the other jobs. ``--importtime`` adds the ten slowest imports of
``mlfactory --help`` (``python -X importtime``, cumulative microseconds).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (
    ["--help"],
    ["data", "--help"],
    ["spec", "--help"],
    ["runs", "--help"],
    ["models", "--help"],
    ["monitor", "--help"],
    ["db", "--help"],
    ["train", "--help"],
    ["predict", "--help"],
    ["--version"],
)
GOAL_S = 0.5


def _run(args: list[str], folder: Path) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env["MLFACTORY_HOME"] = str(folder / "home")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlfactory", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 2):  # a group alone exits 2 after its help
        raise SystemExit(f"mlfactory {' '.join(args)} exited {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def _importtime(folder: Path, top: int = 10) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlfactory", "--help"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MLFACTORY_HOME": str(folder / "home")},
    )
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit():
                rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command")
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports")
    options = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load:.1f} at the start"
    )
    print()
    print("| command | best wall s | median wall s | median CPU s | under 0.5 s (best wall) |")
    print("|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _run(["--version"], folder)  # warm the file cache and byte-code
        for args in COMMANDS:
            walls, cpus = zip(*(_run(args, folder) for _ in range(options.runs)), strict=True)
            best = min(walls)
            print(
                f"| `mlfactory {' '.join(args)}` | {best:.3f} | {statistics.median(walls):.3f} | "
                f"{statistics.median(cpus):.3f} | {'yes' if best < GOAL_S else 'no'} |"
            )
        if options.importtime:
            print()
            print("slowest imports of `mlfactory --help` (cumulative, -X importtime):")
            for micros, name in _importtime(folder):
                print(f"  {micros / 1e6:6.3f} s  {name.strip()}")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
