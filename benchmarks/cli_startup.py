"""How long ``mlfactory --help``, ``mlfactory GROUP --help`` and each command take to start.

    .venv/bin/python benchmarks/cli_startup.py            # 7 runs of each help command
    .venv/bin/python benchmarks/cli_startup.py --runs 15 --importtime
    .venv/bin/python benchmarks/cli_startup.py --commands --runs 5   # commands doing tiny work
    .venv/bin/python benchmarks/cli_startup.py --commands --compare /tmp/old/src   # before, after
    .venv/bin/python benchmarks/cli_startup.py --commands --line benchmarks/_work/line-5000
    .venv/bin/python benchmarks/cli_startup.py --readers --runs 5 [--compare /tmp/old/src]
    .venv/bin/python benchmarks/cli_startup.py --ingest --runs 3 [--compare /tmp/old/src]

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

``--compare OLD_SRC`` runs every command alternately with an older tree's ``src`` folder first on
``PYTHONPATH`` ("before") and with this one ("after"), so that both meet the same load; the table
gives both medians. OLD_SRC may be a whole ``PYTHONPATH`` (``/tmp/old/src:/tmp/typer-0.29``: the
older tree with the Typer it ran on). Both trees are byte-compiled first (with
``PYTHONDONTWRITEBYTECODE`` set, a copied tree without ``__pycache__`` would compile every module
on every run). ``--line DIR``
adds ``mlfactory run`` with nothing to do (issue #18's no-op rerun) on a copy of the folder
``benchmarks/line.py`` left (``credit_line.toml`` and its home).

``--readers`` times the reading commands (``runs list/show/compare``, ``models list/show/
decisions``) on a store *with* runs (12, two of them nested, one deleted) and a registered model
(3 versions, aliases, tags), alternately "before" and "after": before is ``--compare OLD_SRC``'s
tree when given, else this tree with ``MLFACTORY_SQL_READERS=0`` (MLflow's client answers).

``--ingest`` gives the no-op ``mlfactory data ingest``'s share of a full one (issue #21: <= 5%):
the shipped 54 tickers, 2000-01-03..2025-12-31, from the synthetic source and from a folder of
``<TICKER>.csv`` files with the default end (today); each run ingests into an empty store, then
reruns with nothing new three times, in turn (with ``--compare OLD_SRC``, each rerun followed by
one on the older tree, on the same store). The share is of wall times (of CPU times in brackets:
a full ingest's wall time is mostly fsync, which moves 2-4x with the disk's other load).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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
    "sqlalchemy", "psycopg", "alembic", "pydantic", "pydantic_settings", "polars",
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


# the last run benchmarks/line.py made: nothing is left to do
LINE_SETS = ["--set", "data.rows=5000", "--set", "train.experiment.seed=7"]
LINE_RUN = ["run", "line/credit_line.toml", *LINE_SETS]


def _env(
    folder: Path, src: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    env["MLFACTORY_HOME"] = str(folder / "home")
    env.update(extra or {})
    if src is not None:  # an older tree: its mlfactory is found first
        env["PYTHONPATH"] = src
    if env.get("PYTHONPATH") is None:
        env.pop("PYTHONPATH", None)
    return env


def _home(args: list[str], folder: Path) -> Path:
    """The command's working folder: the line's copy for ``mlfactory run``."""
    return folder / "line" if args[:1] == ["run"] else folder


def _run(
    args: list[str],
    folder: Path,
    ok: tuple[int, ...] = (0, 2),
    src: str | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[float, float]:
    env = _env(folder, src, extra)
    if args[:1] == ["run"]:
        env["MLFACTORY_HOME"] = str(folder / "line" / ".mlfactory")
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


def _prepare(folder: Path, line: Path | None = None) -> None:
    """Two small samples, a one-ticker synthetic store, a database at the schema's head (and a
    copy of a line's folder, run once so that its schema is at this tree's head)."""
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
    if line is not None:
        shutil.copytree(line, folder / "line", symlinks=True)
        _run(LINE_RUN, folder, ok=(0,))


def _imports(
    args: list[str], folder: Path, extra: dict[str, str] | None = None
) -> tuple[float, list[str]]:
    """Seconds ``-X importtime`` counts (top-level imports) and the heavy libraries loaded."""
    env = _env(folder, extra=extra)
    if args[:1] == ["run"]:
        env["MLFACTORY_HOME"] = str(folder / "line" / ".mlfactory")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlfactory", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env=env,
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


def _line_share(folder: Path, no_op_walls: dict[str, float]) -> None:
    """The whole line rerun through the CLI (``--from data``: every stage), once, and the share
    of it that each no-op rerun took (issue #18: <= 3%)."""
    full, _ = _run([*LINE_RUN, "--from", "data"], folder, ok=(0,))
    print(f"\n`mlfactory {' '.join(LINE_RUN)} --from data` (every stage): {full:.2f} s wall")
    for label, wall in no_op_walls.items():
        print(f"- no-op rerun, {label}: {wall:.3f} s = {100 * wall / full:.1f}% of it")


def _compare(folder: Path, runs: int, old_src: str, line: Path | None) -> None:
    """Each command alternately on the older tree and on this one: medians of both."""
    _prepare(folder, line)
    helps = [["--help"], ["data", "--help"], ["run", "--help"]]
    commands = [*helps, *WORK_COMMANDS, *([LINE_RUN] if line is not None else [])]
    print(
        "| command | before: median wall s | before: median CPU s | after: median wall s | "
        "after: median CPU s | after: heavy libraries loaded |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for args in commands:
        timed: dict[str | None, list[tuple[float, float]]] = {old_src: [], None: []}
        for _ in range(runs):
            for src in timed:
                timed[src].append(_run(args, folder, ok=(0, 1), src=src))
        (old_wall, old_cpu), (new_wall, new_cpu) = (
            (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for t in timed.values()
        )
        _, loaded = _imports(args, folder)
        shown = " ".join(a if len(a) < 40 else Path(a).name for a in args)
        print(
            f"| `mlfactory {shown}` | {old_wall:.3f} | {old_cpu:.3f} | {new_wall:.3f} | "
            f"**{new_cpu:.3f}** | {', '.join(loaded) or '–'} |"
        )
        if args is LINE_RUN:
            no_op = {"before": old_wall, "after": new_wall}
    if line is not None:
        _line_share(folder, no_op)


def _commands(folder: Path, runs: int, line: Path | None = None) -> None:
    _prepare(folder, line)
    print(
        "| command | best wall s | median wall s | median CPU s | imports s | heavy libraries "
        "loaded |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for args in [*WORK_COMMANDS, *([LINE_RUN] if line is not None else [])]:
        walls, cpus = zip(
            *(_run(args, folder, ok=(0, 1)) for _ in range(runs)), strict=True
        )  # 1: drift found
        seconds, loaded = _imports(args, folder)
        shown = " ".join(a if len(a) < 40 else Path(a).name for a in args)
        print(
            f"| `mlfactory {shown}` | {min(walls):.3f} | {statistics.median(walls):.3f} | "
            f"{statistics.median(cpus):.3f} | {seconds:.2f} | {', '.join(loaded) or '–'} |"
        )
        if args is LINE_RUN:
            no_op = {"median": statistics.median(walls)}
    if line is not None:
        _line_share(folder, no_op)


def _write_csv_folder(folder: Path) -> None:
    """One ``<TICKER>.csv`` per shipped ticker: the synthetic prices up to 2025-12-31."""
    from datetime import date

    from mlfactory.data._sources import SyntheticSource
    from mlfactory.data._tickers import read_tickers

    folder.mkdir(parents=True, exist_ok=True)
    source = SyntheticSource()
    for row in read_tickers():
        frame = source.fetch(row.ticker, date(2000, 1, 3), date(2025, 12, 31))
        frame.to_csv(folder / f"{row.ticker}.csv", index=False, date_format="%Y-%m-%d")


NO_OPS = 3  # no-op reruns after each full ingest


def _ingest_share(folder: Path, runs: int, old_src: str | None) -> None:
    """Full ingests into an empty store and no-op reruns, in turn, for both sources."""
    csv_dir = folder / "csv"
    _write_csv_folder(csv_dir)
    sources = {
        "synthetic": ["data", "ingest"],
        "csv, default end today": ["data", "ingest", "--source", "csv", "--csv-dir", str(csv_dir)],
    }
    labels = ["full", "no-op", *(["no-op before"] if old_src else [])]
    header = " no-op before: median wall s | before: median CPU s | before share |"
    print(
        "| source | full: median wall s | full: median CPU s | no-op: median wall s | "
        "no-op: median CPU s | no-op share: wall (CPU) |" + (header if old_src else "")
    )
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if old_src else ""))
    for name, args in sources.items():
        timed: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
        for index in range(runs):
            home = folder / f"home-{index}"
            shutil.rmtree(home, ignore_errors=True)
            extra = {"MLFACTORY_HOME": str(home)}
            timed["full"].append(_run(args, folder, ok=(0,), extra=extra))
            for _ in range(NO_OPS):  # a no-op is short: more of them, in turn with "before"
                timed["no-op"].append(_run(args, folder, ok=(0,), extra=extra))
                if old_src:
                    before = _run(args, folder, ok=(0,), src=old_src, extra=extra)
                    timed["no-op before"].append(before)
            shutil.rmtree(home, ignore_errors=True)
        medians = {
            label: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for label, t in timed.items()
        }
        full = medians["full"][0]
        cells = [f"{wall:.3f} | {cpu:.3f}" for wall, cpu in medians.values()]
        full_cpu = medians["full"][1]
        row = (
            f"| {name} | {cells[0]} | {cells[1]} | **{100 * medians['no-op'][0] / full:.1f}%** "
            f"({100 * medians['no-op'][1] / full_cpu:.1f}%) |"
        )
        if old_src:
            before = medians["no-op before"]
            row += (
                f" {cells[2]} | {100 * before[0] / full:.1f}% ({100 * before[1] / full_cpu:.1f}%) |"
            )
        print(row)
        print(f"  (load average {os.getloadavg()[0]:.1f} after {name})")


_POPULATE = """
from mlfactory.settings import get_settings
from mlfactory.tracking import experiment_for, open_tracking
settings = get_settings()
client = open_tracking(settings)
experiment = experiment_for(client, "credit", settings)
ids = []
for index in range(12):
    tags = {"mlfactory.role": "candidate", "mlflow.parentRunId": ids[0]} if index in (1, 2) else {}
    run = client.create_run(experiment, run_name=f"run-{index}", tags=tags).info.run_id
    client.log_param(run, "C", str(index))
    for key in ("test_roc_auc", "test_accuracy", "test_f1", "train_loss"):
        client.log_metric(run, key, 0.5 + index / 100)
    client.log_text(run, "notes", "notes.txt")
    client.set_terminated(run)
    ids.append(run)
client.delete_run(ids[-1])
client.create_registered_model("credit-model")
for run in ids[:3]:
    client.create_model_version(
        "credit-model", f"runs:/{run}/model", run, tags={"spec": "x", "metric.test_roc_auc": "0.6"}
    )
client.set_registered_model_alias("credit-model", "champion", "2")
client.set_registered_model_alias("credit-model", "challenger", "3")
print(" ".join(ids))
"""


def _readers(folder: Path, runs: int, old_src: str | None) -> None:
    """The reading commands on a store with runs and a model, before and after alternately."""
    home = _env(folder)
    subprocess.run(
        [sys.executable, "-m", "mlfactory", "db", "upgrade"], cwd=folder, env=home, check=True,
        capture_output=True,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _POPULATE], cwd=folder, env=home, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    ids = done.stdout.split()
    commands = [
        ["runs", "list"], ["runs", "list", "--all", "--json"], ["runs", "show", ids[0]],
        ["runs", "compare", ids[0], ids[1], ids[2]], ["models", "list"],
        ["models", "show", "credit-model"], ["models", "decisions", "credit-model"],
    ]  # fmt: skip
    before_env = {} if old_src else {"MLFACTORY_SQL_READERS": "0"}
    label = f"`{old_src}`" if old_src else "MLflow's client (MLFACTORY_SQL_READERS=0)"
    print(f"before: {label}; after: this tree, MLflow's tables read with SQL\n")
    print(
        "| command | before: median wall s | before: median CPU s | after: median wall s | "
        "after: median CPU s | after / before CPU | after: heavy libraries loaded |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for args in commands:
        before: list[tuple[float, float]] = []
        after: list[tuple[float, float]] = []
        for _ in range(runs):
            before.append(_run(args, folder, ok=(0,), src=old_src, extra=before_env))
            after.append(_run(args, folder, ok=(0,)))
        (old_wall, old_cpu), (new_wall, new_cpu) = (
            (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for t in (before, after)
        )
        _, loaded = _imports(args, folder)
        shown = " ".join(a[:8] if len(a) == 32 else a for a in args)
        print(
            f"| `mlfactory {shown}` | {old_wall:.3f} | {old_cpu:.3f} | {new_wall:.3f} | "
            f"**{new_cpu:.3f}** | {new_cpu / old_cpu:.2f} | {', '.join(loaded) or '–'} |"
        )


def _byte_compile(old_src: str | None) -> None:
    """Both trees' byte code written first: with PYTHONDONTWRITEBYTECODE set, a tree without
    ``__pycache__`` would compile every module it imports on every run (tens of ms)."""
    import compileall

    folders = [str(Path(__file__).resolve().parents[1] / "src")]
    folders += old_src.split(os.pathsep) if old_src else []  # OLD_SRC may be a PYTHONPATH
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command")
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports")
    parser.add_argument(
        "--commands", action="store_true", help="time commands doing tiny work, not help"
    )
    parser.add_argument(
        "--compare", metavar="OLD_SRC", help="--commands: alternate with an older tree's src/"
    )
    parser.add_argument(
        "--line",
        type=Path,
        metavar="DIR",
        help="--commands: also `mlfactory run` with nothing to do, on a copy of DIR "
        "(a folder benchmarks/line.py left, e.g. benchmarks/_work/line-5000)",
    )
    parser.add_argument(
        "--readers",
        action="store_true",
        help="time runs/models reading commands on a store with runs, before and after",
    )
    parser.add_argument(
        "--ingest",
        action="store_true",
        help="the no-op data ingest's share of a full one (synthetic and csv sources)",
    )
    options = parser.parse_args()
    _byte_compile(options.compare)
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) "
        "at the start"
    )
    print()
    for wanted, measure in ((options.ingest, _ingest_share), (options.readers, _readers)):
        if wanted:
            with tempfile.TemporaryDirectory() as tmp:
                old_src = str(Path(options.compare).resolve()) if options.compare else None
                measure(Path(tmp), options.runs, old_src)
            print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
            return
    if options.commands:
        with tempfile.TemporaryDirectory() as tmp:
            if options.compare:
                _compare(
                    Path(tmp), options.runs, str(Path(options.compare).resolve()), options.line
                )
            else:
                _commands(Path(tmp), options.runs, options.line)
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
