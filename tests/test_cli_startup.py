"""``mlfactory --help`` and ``mlfactory GROUP --help`` stay quick: the heavy libraries load with
the commands that use them, never with help (they were ~2.4 s of every invocation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# what help must not import: data and ML stacks, MLflow, the web stack, database drivers, the
# specs' pydantic (settings are read without it)
HEAVY = (
    "pandas", "numpy", "sklearn", "scipy", "pyarrow", "dask", "distributed", "matplotlib",
    "mlflow", "skops", "onnxruntime", "shap", "fastapi", "starlette", "uvicorn", "jinja2",
    "sqlalchemy", "psycopg", "alembic", "pydantic", "pydantic_settings",
)  # fmt: skip

HELP = (
    ["--help"],
    ["data", "--help"],
    ["data"],
    ["spec", "--help"],
    ["runs", "--help"],
    ["models", "--help"],
    ["monitor", "--help"],
    ["db", "--help"],
    ["train", "--help"],
    ["predict", "--help"],
    ["monitor", "drift", "--help"],
    ["data", "ingest", "--help"],
)

_PROBE = """
import json, sys
heavy = set(json.loads(sys.argv[2]))
sys.argv = ["mlfactory", *json.loads(sys.argv[1])]
from mlfactory.cli import main
try:
    main()
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & heavy)
sys.stderr.write("LOADED " + json.dumps(loaded) + "\\n")
"""


@pytest.mark.parametrize("args", HELP, ids=" ".join)
def test_help_imports_no_heavy_module(args: list[str], tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert "Usage: mlfactory" in done.stdout, done.stderr
    loaded = json.loads(done.stderr.split("LOADED ", 1)[1])
    assert loaded == [], f"`mlfactory {' '.join(args)}` imported {loaded}"


def test_the_import_free_choices_equal_the_library_ones() -> None:
    from mlfactory.cli import _choices
    from mlfactory.data._feature_store import SAMPLE_FORMATS
    from mlfactory.data._featurize import LOCAL_SCHEDULERS
    from mlfactory.data._sources import SOURCES, SYNTHETIC_DEFAULT_END, SourceName
    from mlfactory.datasets import SyntheticName
    from mlfactory.datasets._base import Task
    from mlfactory.settings import LOG_LEVELS

    for copy, original in (
        (_choices.SourceName, SourceName),
        (_choices.SyntheticName, SyntheticName),
        (_choices.Task, Task),
    ):
        assert [(m.name, m.value) for m in copy] == [(m.name, m.value) for m in original]
    assert {k.value: s.description for k, s in SOURCES.items()} == _choices.SOURCE_DESCRIPTIONS
    assert _choices.SYNTHETIC_DEFAULT_END == SYNTHETIC_DEFAULT_END
    assert _choices.SAMPLE_FORMATS == SAMPLE_FORMATS
    assert _choices.LOCAL_SCHEDULERS == LOCAL_SCHEDULERS
    assert _choices.LOG_LEVELS == LOG_LEVELS


def test_help_reads_no_settings_and_commands_still_do(monkeypatch) -> None:
    """Help works even with a broken setting (it reads none); the command itself still fails."""
    from typer.testing import CliRunner

    from mlfactory.cli import app

    runner = CliRunner()
    monkeypatch.setenv("MLFACTORY_LOG_LEVEL", "LOUD")
    for args in (["runs", "--help"], ["train", "--help"], ["monitor", "drift", "--help"]):
        helped = runner.invoke(app, args)
        assert helped.exit_code == 0 and "Usage: mlfactory" in helped.output, helped.output
    info = runner.invoke(app, ["info"])
    assert info.exit_code == 2 and "MLFACTORY_LOG_LEVEL" in info.output


# what Typer's help module imports that mlfactory never shows: markdown help, pretty tracebacks
UNSHOWN = ("rich.markdown", "markdown_it", "rich.traceback", "rich.pretty", "pygments", "attr")
_MODULES = """
import json, sys
if sys.argv[2:3] == ["real"]:
    import rich.markdown, rich.traceback  # Typer's own help module, as it comes
sys.argv = ["mlfactory", *json.loads(sys.argv[1])]
from mlfactory.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _help_run(args: list[str], *extra: str) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _MODULES, json.dumps(args), *extra],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "TERM": "dumb"},
    )
    output, _, modules = (done.stdout + done.stderr).partition("MODULES ")
    return output, set(json.loads(modules))


@pytest.mark.parametrize(
    "args", [["--help"], ["data", "ingest", "--help"], ["data", "bogus"]], ids=" ".join
)
def test_help_and_usage_errors_load_no_markdown_nor_tracebacks(args: list[str]) -> None:
    """Typer's help panels come without rich.markdown and rich.traceback (~60 ms), and without
    click itself (Typer vendors it), yet print exactly what Typer's own module prints."""
    output, modules = _help_run(args)
    assert "Usage: mlfactory" in output
    loaded = sorted(m for m in modules if m.split(".")[0] in ("click", *UNSHOWN) or m in UNSHOWN)
    assert loaded == [], f"`mlfactory {' '.join(args)}` imported {loaded}"
    real_output, real_modules = _help_run(args, "real")
    assert "rich.markdown" in real_modules
    assert output == real_output


def test_the_stand_ins_load_the_real_classes_when_used() -> None:
    code = """
from mlfactory.cli._help import load_light_rich_utils
load_light_rich_utils()
import sys, typer.rich_utils as ru
assert "rich.markdown" not in sys.modules and "rich.traceback" not in sys.modules
import rich.markdown, rich.traceback
made = ru.Markdown("# title")
assert type(made) is rich.markdown.Markdown and isinstance(made, ru.Markdown)
try:
    1 / 0
except ZeroDivisionError as exc:
    shown = ru.Traceback.from_exception(type(exc), exc, exc.__traceback__)
assert type(shown) is rich.traceback.Traceback
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


# the cli modules that define commands: a command imports its own module(s) and no other
COMMAND_MODULES = (
    "_dashboard", "_db", "_demo", "_explain", "_features", "_ingest", "_line", "_monitor",
    "_predict", "_registry", "_runs", "_serve", "_spec", "_synth", "_train",
)  # fmt: skip
DATA = {"_features", "_ingest", "_synth"}  # the data group's commands register from these


@pytest.mark.parametrize(
    ("args", "own"),
    [
        (["data", "ingest", "--help"], DATA),
        (["data", "ingest", "--tickers", "missing.csv"], DATA),  # runs: fails on the file
        (["train", "--help"], {"_train"}),
        (["runs", "list", "--help"], {"_runs"}),
        (["monitor", "drift", "--help"], {"_monitor"}),
        (["info", "--help"], set()),
        (["--version"], set()),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_a_command_imports_only_its_own_cli_modules(
    args: list[str], own: set[str], tmp_path
) -> None:
    """The command tree is built lazily: `mlfactory data ingest` neither imports nor converts
    the train, serve, registry... commands (~50 ms of Typer's conversions, issue #21)."""
    done = subprocess.run(
        [sys.executable, "-c", _MODULES, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "MLFACTORY_HOME": str(tmp_path / "home")},
    )
    output, _, listed = (done.stdout + done.stderr).partition("MODULES ")
    modules = set(json.loads(listed))
    assert "Traceback" not in output, output
    loaded = {m.rsplit(".", 1)[1] for m in modules if m.startswith("mlfactory.cli._")}
    assert loaded & set(COMMAND_MODULES) == own, f"`mlfactory {' '.join(args)}`: {loaded}"


def test_the_settings_load_without_pydantic() -> None:
    """Every command reads its settings before any work: they load with python-dotenv and
    tomllib, not pydantic (~0.1 s of a no-op ingest with pydantic-settings, issue #21)."""
    code = """
import sys
from mlfactory.settings import load_settings
assert load_settings().log_level == "INFO"
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_settings")))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFACTORY_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "[]", done.stderr


_GC_PROBE = """
import gc, sys
import mlfactory.cli
print("after import", gc.isenabled())
import mlfactory.settings
from mlfactory.data._bronze import BronzeStore
load, status = mlfactory.settings.load_settings, BronzeStore.status
def loading(**overrides):
    print("reading the settings", gc.isenabled())
    return load(**overrides)
def probe(self):
    print("in the command", gc.isenabled(), gc.get_freeze_count() > 10_000)
    return status(self)
mlfactory.settings.load_settings, BronzeStore.status = loading, probe
sys.argv = ["mlfactory", "data", "status"]
from mlfactory.__main__ import main
main()
"""


def _python(code: str, folder) -> str:
    """What ``code`` prints (and its errors), run in a fresh interpreter in ``folder``."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, "MLFACTORY_HOME": str(folder / "home")},
    )
    return done.stdout + done.stderr


def test_garbage_collection_is_off_for_the_start_up_only(tmp_path) -> None:
    """The ``mlfactory`` command starts without garbage collection (~7% of a no-op command);
    the start-up's objects are then frozen out of later collections and the command's own work
    collects as always. A program that imports the CLI is left as it was."""
    output = _python(_GC_PROBE, tmp_path)
    assert "after import True" in output, output
    assert "reading the settings False" in output, output
    assert "in the command True True" in output, output


def test_typer_help_module_loads_only_for_help_or_an_error(tmp_path) -> None:
    """A command that prints no help nor error never imports ``typer.rich_utils`` (~10 ms);
    imported later, it is the module its own loader executed, stand-ins in place."""
    code = """
import sys
sys.argv = ["mlfactory", "data", "status"]
from mlfactory.cli import main
try:
    main()
except SystemExit:
    pass
print("after the command", "typer.rich_utils" in sys.modules)
import typer.rich_utils as ru
spec = ru.__spec__
print("spec", spec.name, type(spec.loader).__name__, spec.origin.endswith("rich_utils.py"))
print("markdown", "rich.markdown" in sys.modules)
"""
    output = _python(code, tmp_path)
    assert "after the command False" in output, output
    assert "spec typer.rich_utils SourceFileLoader True" in output, output
    assert "markdown False" in output, output
