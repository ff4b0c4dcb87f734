"""Safe model files: skops with an exact allow-list held here, never read back from the file.

skops rebuilds only the types it trusts by default (scikit-learn estimators, builtins, numpy
arrays); every other type a file names must be passed to ``skops.io.load`` explicitly. mlfactory
passes only names that are both in :data:`TRUSTED_TYPES` (fully qualified, compared exactly: a
prefix such as ``numpy.`` would admit ``numpy.testing._private.utils.runstring``, an ``exec``) and,
when the model's metadata recorded them at logging time, in that recorded list too.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlfactory.exceptions import MlfactoryError

__all__ = [
    "TRUSTED_TYPES",
    "UnsafeModelError",
    "UnverifiedModelError",
    "file_sha256",
    "load_skops",
    "skops_trusted_types",
    "untrusted_types",
]

# Every non-default type the model zoo and the preprocessing recipes need, by exact name.
# Nothing of mlfactory itself: a model must load where only its requirements.txt is installed.
# tests/test_serialization.py fits each zoo model with each recipe and checks the list covers
# them, so a new model family that needs a new type fails there, not at a user's load.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # numpy: dtypes of fitted arrays
        "numpy.dtype",
        # scikit-learn internals of fitted trees, neighbours and networks
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        # optional model families (LightGBM, XGBoost), when installed
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
    }
)


class UnsafeModelError(MlfactoryError):
    """A model file needs a type outside the allow-list, or its bytes changed since logging."""


class UnverifiedModelError(UnsafeModelError):
    """A model version has no recorded SHA-256, so its file cannot be verified."""

    exit_code = 2


def _refused(types: Iterable[str], recorded: Iterable[str] | None) -> list[str]:
    allowed = TRUSTED_TYPES if recorded is None else TRUSTED_TYPES & set(recorded)
    return sorted({name for name in types if name not in allowed})


def _check(types: list[str], where: str, recorded: Iterable[str] | None = None) -> list[str]:
    refused = _refused(types, recorded)
    if refused:
        outside = [name for name in refused if name not in TRUSTED_TYPES]
        why = (
            "types outside mlfactory's allow-list"
            if outside
            else "types its metadata did not record when it was logged"
        )
        raise UnsafeModelError(
            f"{where} needs {why}: {', '.join(outside or refused)}; refusing to load it "
            "(only the exact types of the model zoo and recipes are trusted)"
        )
    return sorted(types)


MAX_SCHEMA_BYTES = 64 << 20  # a model's schema.json is KBs to a few MB; more is a zip bomb


def untrusted_types(path: Path | str) -> list[str]:
    """The types a skops file asks to rebuild beyond skops' defaults (nothing is constructed)."""
    import skops.io as sio

    try:
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo("schema.json").file_size
        if size > MAX_SCHEMA_BYTES:
            raise UnsafeModelError(
                f"model file {path} has a {size:,}-byte schema.json (limit {MAX_SCHEMA_BYTES:,}); "
                "refusing to read it"
            )
        return sio.get_untrusted_types(file=Path(path))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise UnsafeModelError(f"model file {path} is not a readable skops file: {exc}") from None


def skops_trusted_types(model: Any) -> list[str]:
    """Non-default types ``model`` needs when saved with skops, checked against the allow-list."""
    import skops.io as sio

    return _check(sio.get_untrusted_types(data=sio.dumps(model)), f"model {type(model).__name__}")


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path | str, expected_sha256: str, what: str = "model file") -> None:
    """Raise :class:`UnsafeModelError` unless ``path`` hashes to ``expected_sha256``."""
    actual = file_sha256(path)
    if actual != expected_sha256.strip().lower():
        raise UnsafeModelError(
            f"{what} {path} has SHA-256 {actual[:12]}…, expected {expected_sha256[:12]}… "
            "as recorded when it was logged; refusing to load a modified file"
        )


def load_skops(
    path: Path | str,
    expected_sha256: str | None,
    *,
    recorded_types: Iterable[str] | None = None,
) -> Any:
    """Load a skops file after checking its hash and the exact types it needs.

    ``expected_sha256=None`` skips the hash check and must be an explicit, warned choice of the
    caller (``--allow-unverified``); the type check always runs.
    """
    import skops.io as sio

    path = Path(path)
    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256)
    trusted = _check(untrusted_types(path), f"model file {path}", recorded_types)
    try:
        return sio.load(path, trusted=trusted)
    except MlfactoryError:
        raise
    except Exception as exc:  # a malformed schema fails inside skops: one line, never a trace
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        raise UnsafeModelError(f"model file {path} could not be loaded: {reason}") from None
