"""``mlfactory predict`` scores with the version's verified ONNX graph (hash-checked, as serve
does) and writes what scikit-learn would, within 1e-6; without a trusted graph it falls back,
saying why."""

from __future__ import annotations

import dataclasses
import functools
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mlfactory.batch import batch_predict
from mlfactory.registry import load_model


def _parts(X: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(X)), 2)):
        X.iloc[chunk].to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=200)
    return folder


def _scored(registered, source: Path, out: Path, **kwargs) -> tuple[pd.DataFrame, object]:
    report = batch_predict(
        registered.settings,
        "credit",
        input_path=source,
        output_path=out,
        key_columns=["id"],
        **kwargs,
    )
    return pd.read_parquet(out).sort_values("id").reset_index(drop=True), report


def _assert_sklearn(out: pd.DataFrame, registered) -> None:
    features = registered.X.drop(columns=["id"])
    model = registered.model
    assert out["id"].tolist() == registered.X["id"].tolist()
    assert out["prediction"].tolist() == model.predict(features).tolist()
    assert out["prediction"].dtype == model.predict(features).dtype
    expected = model.predict_proba(features)
    for position, label in enumerate(model.classes_):
        np.testing.assert_allclose(out[f"proba_{label}"], expected[:, position], rtol=0, atol=1e-6)


def test_predict_uses_the_verified_graph(registered, tmp_path: Path) -> None:
    source = _parts(registered.X, tmp_path / "in")
    compiled, report = _scored(registered, source, tmp_path / "onnx")
    assert report.inference == "onnx"
    _assert_sklearn(compiled, registered)
    plain, fallback = _scored(registered, source, tmp_path / "sklearn", onnx=False)
    assert fallback.inference == "scikit-learn: ONNX disabled (--no-onnx)"
    assert report.inference_reason.startswith("verified ONNX graph (")
    assert list(plain.columns) == list(compiled.columns)
    assert plain["prediction"].tolist() == compiled["prediction"].tolist()
    probabilities = [c for c in plain.columns if c.startswith("proba_")]
    difference = plain[probabilities].to_numpy() - compiled[probabilities].to_numpy()
    assert np.max(np.abs(difference)) < 1e-6


def test_a_graph_that_fails_its_hash_is_not_used(registered, tmp_path: Path) -> None:
    loaded = load_model(registered.settings, "credit")
    assert loaded.info.tags["onnx_status"] == "ok"
    tags = {**loaded.info.tags, "onnx_sha256": "0" * 64}
    forged = dataclasses.replace(loaded, info=dataclasses.replace(loaded.info, tags=tags))
    out, report = _scored(registered, _parts(registered.X, tmp_path / "in"), tmp_path / "o",
                          loaded=forged)  # fmt: skip
    assert report.inference.startswith("scikit-learn: fallback: onnx/")
    assert report.inference.endswith("does not match its recorded SHA-256")
    _assert_sklearn(out, registered)


def test_a_compiled_task_travels_to_a_fresh_process(registered, tmp_path: Path) -> None:
    """A worker gets the graph's bytes (not a session), builds its own session and scores
    without importing MLflow or the registry."""
    from mlfactory._batch_compiled import CompiledModel, score_compiled
    from mlfactory._batch_tasks import read_row_groups, score_into_folder
    from mlfactory.registry._compile import load_compiled

    loaded = load_model(registered.settings, "credit")
    model_bytes, _ = load_compiled(registered.settings, loaded)
    assert model_bytes is not None
    compiled = CompiledModel(model_bytes, loaded.model, np.int64, proba=True)
    compiled.session()  # built here; must not travel
    score = functools.partial(
        score_compiled,
        inputs=loaded.inputs,
        key_columns=["id"],
        classes=[0, 1],
        model_version="1",
        scored_at=pd.Timestamp("2026-01-01", tz="UTC"),
    )
    source = _parts(registered.X, tmp_path / "in") / "part-0.parquet"
    columns = ["id", *(c.name for c in loaded.inputs)]
    task = functools.partial(score_into_folder, score=score, folder=str(tmp_path))
    loader = functools.partial(read_row_groups, str(source), [0, 1], columns)
    payload = tmp_path / "task.pickle"
    payload.write_bytes(pickle.dumps((task, loader, compiled)))
    code = (
        "import pickle, sys; task, loader, model = pickle.loads(open(sys.argv[1], 'rb').read());"
        "assert model._session is None; print(task(loader, model, 7)); "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('mlflow')} | "
        "{m for m in sys.modules if m.startswith(('mlfactory.registry', 'mlfactory.batch'))}))"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code, str(payload)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert lines == ["400", "[]"]
    part = pd.read_parquet(tmp_path / "part-00007.parquet")
    expected = loaded.model.predict_proba(registered.X.iloc[:400].drop(columns=["id"]))
    assert part["id"].tolist() == registered.X["id"].iloc[:400].tolist()
    np.testing.assert_allclose(part["proba_1"], expected[:, 1], rtol=0, atol=1e-6)
