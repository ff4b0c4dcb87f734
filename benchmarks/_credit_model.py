"""The credit model the serving and batch benchmarks score: trained and registered once per home.

The course's credit pipeline (``power`` recipe + LogisticRegression, 13 features) on 20,000
synthetic rows, promoted (with its verified ONNX graph) as ``NAME`` version 1.
"""

from __future__ import annotations

from pathlib import Path

SPEC = """
name = "{experiment}"
dataset = "credit"
preprocessing = "power"
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc"]
[search]
kind = "none"
"""


def benchmark_settings(work: Path):
    from mlfactory.settings import load_settings

    return load_settings(home=work / ".mlfactory")


def ensure_credit_model(work: Path, name: str, experiment: str, rows: int = 20_000) -> None:
    """Train and register ``name``/1 under ``work`` unless it is there already."""
    from mlfactory.datasets import write_synthetic
    from mlfactory.exceptions import ModelNotFound
    from mlfactory.registry import parse_model_ref, promote, resolve_version
    from mlfactory.tracking import open_tracking
    from mlfactory.training import train

    current = benchmark_settings(work)
    try:
        resolve_version(open_tracking(current), parse_model_ref(f"{name}/1"))
        return
    except ModelNotFound:
        pass
    work.mkdir(parents=True, exist_ok=True)
    write_synthetic("credit", rows, settings=current)
    spec = work / f"{experiment}.toml"
    spec.write_text(SPEC.format(experiment=experiment))
    promote(current, name, run_id=train(spec, current).run_id)
