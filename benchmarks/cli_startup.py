"""How long ``mlfactory --help``, ``mlfactory GROUP --help`` and each command take to start.

    .venv/bin/python benchmarks/cli_startup.py            # 7 runs of each help command
    .venv/bin/python benchmarks/cli_startup.py --runs 15 --importtime
    .venv/bin/python benchmarks/cli_startup.py --commands --runs 5   # commands doing tiny work

``--commands`` runs commands that do their real work on tiny inputs (two 400-row parquet samples,
a one-ticker synthetic ingest that is already up to date, an SQLite database at the schema's head,
no run tracked), so their time is their fixed cost: the interpreter, the imports, the settings
and the database. For each it also gives the seconds ``python -X importtime`` counts in imports
and the heavy libraries loaded (``tests/test_cli_imports.py`` guards those sets).

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
HEAVY = (
    "pandas", "numpy", "sklearn", "scipy", "pyarrow", "dask", "distributed", "matplotlib",
    "mlflow", "skops", "onnxruntime", "shap", "fastapi", "starlette", "uvicorn", "jinja2",
    "sqlalchemy", "psycopg", "alembic", "pydantic_settings", "polars",
)  # fmt: skip
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "credit_matrix.toml"
WORK_COMMANDS = (
    ["--version"],
    ["db", "status"],
    ["info"],
    ["data", "status"],
    ["data", "ingest", "--source", "synthetic", "--tickers", "tickers.csv",
     "--start", "2024-01-02", "--end", "2024-03-29"],
    ["spec", "validate", str(EXAMPLE)],
    ["spec", "models"],
    ["runs", "list"],
    ["models", "list"],
    ["monitor", "drift", "--reference", "a.parquet", "--current", "b.parquet"],
    ["monitor", "windows", "--data", "a.parquet", "--column", "x", "--date-column", "date"],
)  # fmt: skip


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env["MLFACTORY_HOME"] = str(folder / "home")
    return env


def _run(args: list[str], folder: Path, ok: tuple[int, ...] = (0, 2)) -> tuple[float, float]:
    env = _env(folder)
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
    if process.returncode not in ok:  # a group alone exits 2 after its help
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


def _prepare(folder: Path) -> None:
    """Two small samples, a one-ticker synthetic store, a database at the schema's head."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    for name, shift in (("a", 0.0), ("b", 0.5)):
        pd.DataFrame({
            "x": rng.normal(shift, 1.0, 400),
            "c": pd.Categorical(rng.choice(["u", "v", "w"], 400)),
            "date": pd.date_range("2020-01-01", periods=400, freq="D"),
        }).to_parquet(folder / f"{name}.parquet")  # fmt: skip
    (folder / "tickers.csv").write_text("ticker,sector,subsector\nAAA,Tech,Software\n")
    for args in (["db", "upgrade"], WORK_COMMANDS[4]):  # the ingest: later runs are no-ops
        subprocess.run(
            [sys.executable, "-m", "mlfactory", *args],
            cwd=folder,
            env=_env(folder),
            check=True,
            capture_output=True,
        )


def _imports(args: list[str], folder: Path) -> tuple[float, list[str]]:
    """Seconds ``-X importtime`` counts (top-level imports) and the heavy libraries loaded."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlfactory", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env=_env(folder),
    )
    total, loaded = 0, set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  ", 1):
                total += int(cumulative)
            if name.strip().split(".")[0] in HEAVY:
                loaded.add(name.strip().split(".")[0])
    return total / 1e6, sorted(loaded)


def _commands(folder: Path, runs: int) -> None:
    _prepare(folder)
    print(
        "| command | best wall s | median wall s | median CPU s | imports s | heavy libraries "
        "loaded |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for args in WORK_COMMANDS:
        walls, cpus = zip(
            *(_run(args, folder, ok=(0, 1)) for _ in range(runs)), strict=True
        )  # 1: drift found
        seconds, loaded = _imports(args, folder)
        shown = " ".join(a if len(a) < 40 else Path(a).name for a in args)
        print(
            f"| `mlfactory {shown}` | {min(walls):.3f} | {statistics.median(walls):.3f} | "
            f"{statistics.median(cpus):.3f} | {seconds:.2f} | {', '.join(loaded) or '–'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command")
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports")
    parser.add_argument(
        "--commands", action="store_true", help="time commands doing tiny work, not help"
    )
    options = parser.parse_args()
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) "
        "at the start"
    )
    print()
    if options.commands:
        with tempfile.TemporaryDirectory() as tmp:
            _commands(Path(tmp), options.runs)
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
        return
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
