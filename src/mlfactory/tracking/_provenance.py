"""Where a run came from: code version, machine, package versions and the data it saw."""

from __future__ import annotations

import hashlib
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

__all__ = ["dataset_fingerprint", "environment_info", "git_info"]

_PACKAGES = ("mlfactory", "scikit-learn", "pandas", "numpy", "mlflow", "dask", "scipy", "optuna")


def git_info(path: Path | str = ".") -> dict[str, str]:
    """Commit and dirty flag of the git working tree at ``path`` (``unknown`` outside git)."""

    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=path, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": str(bool(status)).lower()}


def environment_info() -> dict[str, str]:
    """Host, Python and key package versions."""
    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    for package in _PACKAGES:
        try:
            info[f"version.{package}"] = version(package)
        except PackageNotFoundError:
            continue
    return info


def dataset_fingerprint(X: pd.DataFrame, y: pd.Series | None = None) -> dict[str, str]:
    """SHA-256 of the data (values, index and column names), its shape and column schema."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    digest.update("\x1f".join(map(str, X.columns)).encode())
    if y is not None:
        digest.update(pd.util.hash_pandas_object(y, index=True).to_numpy().tobytes())
        digest.update(str(y.name).encode())
    schema = ";".join(f"{column}:{dtype}" for column, dtype in X.dtypes.items())
    rows = len(X)
    return {
        "dataset_sha256": digest.hexdigest(),
        "dataset_shape": f"{rows}x{X.shape[1]}",
        "dataset_schema": schema,
    }
