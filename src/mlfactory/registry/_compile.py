"""Promotion's compile step: compile a registered version, verify it, log the graph, tag it.

The compiler itself (:mod:`mlfactory.compile`) knows nothing of MLflow; this glue loads the
version through the registry's safe loader, reads the run's reference sample, and stores a
verified graph content-addressed beside the run's artifacts.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlfactory.logs import get_logger

__all__ = ["compile_version", "load_compiled"]

logger = get_logger(__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else repr(exc)


def compile_version(settings: Any, client: Any, info: Any) -> dict[str, str]:
    """Compile a registered version to ONNX, verify it on the run's reference sample, log
    ``onnx/<sha256[:16]>/model.onnx`` beside the run's artifacts; the version tags to record
    (never raises)."""
    import pandas as pd

    from mlfactory.compile import TOLERANCE, compile_pipeline, onnx_artifact_path
    from mlfactory.registry._load import load_model
    from mlfactory.registry._registry import ModelRef

    work = Path(tempfile.mkdtemp(prefix="mlfactory-onnx-"))
    try:
        try:
            loaded = load_model(settings, ModelRef(info.name, version=info.version), cache_dir=work)
            sample = Path(client.download_artifacts(info.run_id, "reference_sample.parquet", work))
            held_out = pd.read_parquet(sample)
        except Exception as exc:  # pickled model, no reference sample, ...
            return {"onnx_status": f"fallback: cannot verify: {_first_line(exc)}"}
        missing = [c.name for c in loaded.inputs if c.name not in held_out.columns]
        if not loaded.inputs or missing:
            return {"onnx_status": "fallback: reference sample lacks model columns"}
        verdict = compile_pipeline(loaded.model, loaded.inputs, held_out)
        tags = {"onnx_status": verdict.status}
        if verdict.max_abs_diff is not None:
            tags["onnx_max_abs_diff"] = f"{verdict.max_abs_diff:.3g}"
            tags["onnx_rows_checked"] = str(verdict.rows_checked)
        if verdict.ok and verdict.model_bytes is not None:
            digest = hashlib.sha256(verdict.model_bytes).hexdigest()
            # content-addressed: promoting the same run again never overwrites another
            # version's graph (which would break that version's recorded hash)
            artifact = onnx_artifact_path(digest)
            path = work / "model.onnx"
            path.write_bytes(verdict.model_bytes)
            try:
                client.log_artifact(info.run_id, str(path), artifact.rsplit("/", 1)[0])
            except Exception as exc:  # the artifact store refused: promote anyway, say why
                return {"onnx_status": f"fallback: cannot store {artifact}: {exc}"[:500]}
            tags["onnx_sha256"] = digest
            tags["onnx_artifact"] = artifact
            tags["onnx_tolerance"] = f"{TOLERANCE:g}"
            tags["onnx_precision"] = "double"
        logger.info("ONNX for %s version %s: %s", info.name, info.version, verdict.status)
        return tags
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_compiled(settings: Any, loaded: Any) -> tuple[bytes | None, str]:
    """A loaded version's verified ONNX graph, its SHA-256 checked against the recorded one:
    ``(graph bytes, reason)``, or ``(None, why not)`` when scikit-learn must score it instead
    (never raises). Serving and batch scoring trust a graph by the same rules."""
    import hashlib

    from mlfactory.compile import ONNX_ARTIFACT, ONNX_PATH
    from mlfactory.tracking import open_tracking

    tags = loaded.info.tags
    status = tags.get("onnx_status")
    if status is None:
        return None, "no ONNX graph recorded for this version (promoted without compile_onnx)"
    if status != "ok":
        return None, status
    artifact = tags.get("onnx_artifact") or ONNX_ARTIFACT
    target = Path(tempfile.mkdtemp(prefix="mlfactory-onnx-"))  # private; only the bytes are kept
    try:
        if not ONNX_PATH.fullmatch(artifact):
            raise ValueError(f"unexpected ONNX artifact path {artifact!r}")
        client = open_tracking(settings)
        path = Path(client.download_artifacts(loaded.info.run_id, artifact, str(target)))
        model_bytes = path.read_bytes()
    except Exception as exc:
        return None, f"fallback: cannot load the ONNX graph: {str(exc).strip()[:200]}"
    finally:
        shutil.rmtree(target, ignore_errors=True)
    if hashlib.sha256(model_bytes).hexdigest() != tags.get("onnx_sha256"):
        return None, f"fallback: {artifact} does not match its recorded SHA-256"
    reason = f"verified ONNX graph ({tags.get('onnx_max_abs_diff', '?')} max abs difference "
    return model_bytes, reason + "from scikit-learn)"
