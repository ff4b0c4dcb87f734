"""Safe model files: skops with an allow-list held here, never read back from the file.

skops refuses to load types it does not trust by default; the types a file needs are checked
against :data:`TRUSTED_TYPE_PREFIXES` before anything is passed to ``skops.io.load``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import skops.io as sio

from mlfactory.exceptions import MlfactoryError

__all__ = [
    "TRUSTED_TYPE_PREFIXES",
    "UnsafeModelError",
    "file_sha256",
    "load_skops",
    "skops_trusted_types",
]

# Module prefixes whose classes may be rebuilt from a model file (fitted estimators, arrays).
TRUSTED_TYPE_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "numpy.",
    "scipy.sparse.",
    "lightgbm.",
    "xgboost.",
    "mlfactory.",
)


class UnsafeModelError(MlfactoryError):
    """A model file needs a type outside the allow-list, or its bytes changed since logging."""


def _check(types: list[str], where: str) -> list[str]:
    refused = [name for name in types if not name.startswith(TRUSTED_TYPE_PREFIXES)]
    if refused:
        raise UnsafeModelError(
            f"{where} needs types outside mlfactory's allow-list: {', '.join(sorted(refused))} "
            f"(allowed prefixes: {', '.join(TRUSTED_TYPE_PREFIXES)})"
        )
    return sorted(types)


def skops_trusted_types(model: Any) -> list[str]:
    """Non-default types ``model`` needs when saved with skops, checked against the allow-list."""
    return _check(sio.get_untrusted_types(data=sio.dumps(model)), f"model {type(model).__name__}")


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_skops(path: Path | str, expected_sha256: str | None = None) -> Any:
    """Load a skops file after checking its hash (when known) and the types it needs."""
    path = Path(path)
    if expected_sha256 is not None:
        actual = file_sha256(path)
        if actual != expected_sha256:
            raise UnsafeModelError(
                f"model file {path} has SHA-256 {actual[:12]}…, expected {expected_sha256[:12]}… "
                "as recorded when it was logged; refusing to load a modified file"
            )
    trusted = _check(sio.get_untrusted_types(file=path), f"model file {path}")
    return sio.load(path, trusted=trusted)
