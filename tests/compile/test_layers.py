"""The compiler sits below the registry and serving: importing it (or the registry) pulls in
neither serving nor the registry, so the two no longer import each other."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("mlfactory.compile", ["mlfactory.registry", "mlfactory.serving", "skl2onnx"]),
        ("mlfactory.registry", ["mlfactory.serving", "mlfactory.compile"]),
    ],
)
def test_import_does_not_reach_upward(module, absent) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"importing {module} imported {done.stdout.strip()}"
