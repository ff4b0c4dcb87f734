"""`make test`'s first step, scripts/ensure_test_deps.sh, in its dry-run mode: what it finds, what
it would install and when it stops, on a machine of each kind (the places it looks are moved into
a temporary folder). And `.ci/run` is nothing but `make test`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure_test_deps.sh"
ALL = ["postgresql", "chromium", "docker-compose"]


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def machine(tmp_path: Path):
    """Run the script (dry run) on a machine with the given tools; (exit code, stdout, stderr)."""

    machines = iter(range(100))

    def run(*, have: tuple[str, ...] = (), uid: int = 0, apt_get: bool = True):
        root = tmp_path / f"machine{next(machines)}"
        bindir, pg = root / "bin", root / "pg"
        bindir.mkdir(parents=True)
        if "postgresql" in have:
            _executable(pg / "16" / "bin" / "initdb")
            _executable(pg / "16" / "bin" / "pg_ctl")
        if "docker-compose" in have:
            _executable(bindir / "docker-compose")
        chromium = root / "chromium"
        if "chromium" in have:
            _executable(chromium)
        apt = _executable(root / "apt" / "apt-get") if apt_get else root / "no-apt-get"
        env = {
            "PATH": str(bindir),  # nothing else: only what this machine "has"
            "VENV": str(ROOT / ".venv"),
            "ENSURE_DEPS_PG_BINDIRS": f"{pg / '16' / 'bin'} {pg / '15' / 'bin'}",
            "ENSURE_DEPS_CHROMIUM": str(chromium),
            "ENSURE_DEPS_UID": str(uid),
            "ENSURE_DEPS_APT_GET": str(apt),
        }
        done = subprocess.run(
            ["/bin/bash", str(SCRIPT), "--dry-run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    return run


def test_the_script_parses() -> None:
    for script in (SCRIPT, ROOT / ".ci" / "run"):
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert os.access(SCRIPT, os.X_OK)


def test_nothing_to_do_when_everything_is_there(machine) -> None:
    code, out, err = machine(have=tuple(ALL), uid=1000, apt_get=False)
    assert (code, err) == (0, "")
    assert "are installed" in out


def test_root_on_debian_says_what_it_installs(machine) -> None:
    code, out, err = machine(have=("postgresql",))
    assert code == 0, err
    assert "installing chromium docker-compose with apt-get" in out
    assert re.search(r"would run: \S*apt-get update -q && \S*apt-get install -y -q chromium "
                     r"docker-compose$", out, re.MULTILINE)  # fmt: skip
    code, out, _ = machine()
    assert code == 0 and "apt-get install -y -q postgresql chromium docker-compose" in out


@pytest.mark.parametrize(
    ("uid", "apt_get", "why"), [(1000, True, "not root"), (0, False, "no apt-get")]
)
def test_stops_with_one_line_naming_the_missing_piece(machine, uid, apt_get, why) -> None:
    code, out, err = machine(have=("postgresql", "docker-compose"), uid=uid, apt_get=apt_get)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("make test: missing chromium ")
    assert why in err and "apt-get install chromium" in err


def test_ci_only_calls_make_test() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "CI=true make test"]
    make = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"], cwd=ROOT, capture_output=True, text=True
    )  # under `make test` itself (CI), a nested make would print "Entering directory" first
    assert make.returncode == 0, make.stderr
    commands = [line for line in make.stdout.splitlines() if not line.startswith("make")]
    assert "scripts/ensure_test_deps.sh" in commands[0]


def test_readme_names_the_extras_make_installs() -> None:
    extras = re.search(r"^EXTRAS\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert extras is not None
    assert f"`.[{extras.group(1)}]`" in (ROOT / "README.md").read_text()
