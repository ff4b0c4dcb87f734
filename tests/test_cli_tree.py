"""The lazily built command tree (``cli/_lazy.py``) still has every command: listed by
``mlfactory --help`` in the same order, each with a working ``--help``, offered by shell completion
(issue #21)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys

import pytest
import typer
import typer.main
from typer.testing import CliRunner

import mlfactory.cli
from mlfactory.cli import _lazy, app
from mlfactory.cli._lazy import Lazy, LazyCommands
from mlfactory.cli._main import _Commands

ROOT = [
    "info", "demo", "train", "run", "ui", "promote", "explain", "serve", "predict", "dashboard",
    "data", "spec", "runs", "models", "monitor", "db",
]  # fmt: skip
GROUPS = {
    "data": ["featurize", "sample", "ingest", "status", "synth"],
    "spec": ["validate", "show", "models", "recipes"],
    "runs": ["list", "reap", "gc", "show", "compare"],
    "models": ["list", "show", "decisions"],
    "monitor": ["drift", "model", "windows"],
    "db": ["status", "upgrade"],
}
EVERY = [[name] for name in ROOT] + [
    [group, name] for group, names in GROUPS.items() for name in names
]

runner = CliRunner()


def test_the_tree_has_every_command_in_order() -> None:
    root = typer.main.get_command(app)
    assert list(root.commands) == ROOT
    for group, names in GROUPS.items():
        assert list(root.commands[group].commands) == names, group


@pytest.mark.parametrize("path", EVERY, ids=" ".join)
def test_every_command_has_its_help(path: list[str]) -> None:
    done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert f"Usage: mlfactory {' '.join(path)}" in done.output


def test_the_root_help_lists_every_command_with_its_summary() -> None:
    done = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    root = typer.main.get_command(app)
    listed = [line.split()[1] for line in done.output.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in ROOT] == ROOT
    for name in ROOT:
        summary = root.commands[name].get_short_help_str(limit=45)
        assert summary.split()[0] in done.output, name


def test_every_command_of_the_cli_modules_is_in_the_table() -> None:
    """A Typer app or a ``*_command`` function of a ``cli`` module that the lazy table does not
    name (nor an app of it register) would be missing from ``mlfactory``."""
    targets = [where.load() for where in _Commands.lazy.values()]
    callbacks = {
        info.callback
        for found in targets
        if isinstance(found, typer.Typer)
        for info in found.registered_commands
    }
    for module_info in pkgutil.iter_modules(mlfactory.cli.__path__):
        module = importlib.import_module(f"mlfactory.cli.{module_info.name}")
        for name, value in vars(module).items():
            if isinstance(value, typer.Typer) and value is not app:
                assert any(value is found for found in targets), f"{module.__name__}.{name}"
            elif name.endswith("_command") and callable(value):
                assert value in targets or value in callbacks, f"{module.__name__}.{name}"


def test_a_mistyped_command_is_still_suggested() -> None:
    done = runner.invoke(app, ["dat"])
    assert done.exit_code == 2
    assert "No such command 'dat'. Did you mean 'data'?" in done.output


def test_shell_completion_offers_every_command(tmp_path) -> None:
    env = {
        **os.environ,
        "_MLFACTORY_COMPLETE": "complete_bash",
        "COMP_WORDS": "mlfactory ",
        "COMP_CWORD": "1",
        "MLFACTORY_HOME": str(tmp_path),
    }
    code = "import sys; sys.argv = ['mlfactory']; from mlfactory.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ROOT, done.stderr


@pytest.mark.parametrize(
    ("args", "converted"),
    [
        (["data", "ingest", "--help"], ["ingest"]),
        (["runs", "show", "--help"], ["show"]),
        (["train", "--help"], ["train"]),
        (["--help"], ROOT[:10]),  # a group's summary needs none of its commands
        (["data", "--help"], GROUPS["data"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) and "--help" in value else "",
)
def test_a_command_converts_only_itself(args, converted, monkeypatch) -> None:
    """Typer converts the options of the command asked for, not its group's nor the app's
    other commands (a listing converts the commands it lists)."""
    seen: list[str] = []
    real = _lazy.get_command_from_info

    def spy(info, **options):
        seen.append(info.name)
        return real(info, **options)

    monkeypatch.setattr(_lazy, "get_command_from_info", spy)
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert sorted(seen) == sorted(converted)


def test_lazy_commands_build_once_on_first_read() -> None:
    built: list[str] = []

    def make(name: str):
        return lambda: built.append(name) or name

    commands = LazyCommands({"a": "A"}, {"b": make("b"), "a": make("a"), "c": make("c")})
    assert list(commands) == ["b", "a", "c"] and "c" in commands and len(commands) == 3
    assert built == []
    assert commands["a"] == "A" and commands["c"] == "c" and commands["c"] == "c"
    assert built == ["c"]
    commands["d"] = "D"
    del commands["b"]
    assert list(commands) == ["a", "c", "d"] and commands.get("b") is None


def test_a_lazy_entry_names_its_module() -> None:
    assert Lazy("mlfactory.cli._db:db_app").load() is sys.modules["mlfactory.cli._db"].db_app
