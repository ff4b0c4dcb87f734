"""Explaining a fleet, segment by segment: permutation importance of each segment's model on
that segment's held-out rows, as one table (CSV) and one HTML report."""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.fleet._plan import FALLBACK_KEY
from mlfactory.settings import Settings

__all__ = ["FleetExplanation", "explain_fleet"]

MIN_ROWS = 20


@dataclass
class FleetExplanation:
    model: str
    version: str
    scoring: str
    table: pd.DataFrame  # segment, rows, status, rank, feature, mean, std
    folder: Path

    @property
    def html(self) -> Path:
        return self.folder / "report.html"


def _importance(model, X, y, scoring, n_repeats, seed) -> pd.DataFrame:
    import warnings

    from sklearn.inspection import permutation_importance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        result = permutation_importance(
            model, X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed, n_jobs=1
        )
    return pd.DataFrame(
        {"feature": list(X.columns), "mean": result.importances_mean, "std": result.importances_std}
    ).sort_values("mean", ascending=False, kind="stable")


def explain_fleet(
    settings: Settings,
    reference: str,
    *,
    max_rows: int = 500,
    n_repeats: int = 5,
    top_k: int = 5,
    seed: int = 0,
    out: str | Path | None = None,
) -> FleetExplanation | None:
    """Per-segment importance of fleet ``reference``; ``None`` when it is a single model."""
    from mlfactory.fleet._registry import (
        ARTIFACT_DIR,
        ModelFiles,
        _download,
        is_fleet_version,
        load_version_manifest,
    )
    from mlfactory.registry import parse_model_ref, resolve_version
    from mlfactory.tracking import open_tracking

    info = resolve_version(open_tracking(settings), parse_model_ref(reference))
    if not is_fleet_version(info):
        return None
    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-explain-"))
    try:
        manifest = load_version_manifest(settings, info, work / "manifest")
        heldout = pd.read_parquet(
            _download(
                settings, f"runs:/{info.run_id}/{ARTIFACT_DIR}/heldout.parquet", work / "rows"
            )
        )
        features = list(manifest["features"])
        target = next(c for c in heldout.columns if c not in features and c != "__segment__")
        scoring = manifest.get("refit") or ("accuracy" if manifest.get("classes") else "r2")
        files = ModelFiles(settings, work / "files")
        groups = heldout.groupby("__segment__", sort=True).indices
        entries = dict(manifest["segments"])
        if manifest.get("fallback"):
            entries[FALLBACK_KEY] = manifest["fallback"]
        rows: list[dict[str, Any]] = []
        for key, entry in sorted(entries.items()):
            positions = np.arange(len(heldout)) if key == FALLBACK_KEY else groups.get(key)
            count = 0 if positions is None else len(positions)
            if count < MIN_ROWS or heldout[target].iloc[positions].nunique() < 2:
                rows.append({"segment": key, "rows": count, "status": "too few rows"})
                continue
            if count > max_rows:
                positions = np.random.default_rng(seed).choice(positions, max_rows, replace=False)
            model = files.load(key, entry, f"fleet {info.name} v{info.version}")
            X, y = heldout.iloc[positions][features], heldout.iloc[positions][target]
            table = _importance(model, X, y, scoring, n_repeats, seed).head(top_k)
            for rank, item in enumerate(table.itertuples(index=False), start=1):
                rows.append(
                    {"segment": key, "rows": len(positions), "status": "explained",
                     "rank": rank, "feature": item.feature, "mean": float(item.mean),
                     "std": float(item.std)}
                )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = pd.DataFrame(rows)
    folder = (
        Path(out)
        if out is not None
        else settings.home / "reports" / "explain" / f"fleet-{info.name}-v{info.version}"
    )
    _write(folder, result, info, scoring)
    return FleetExplanation(info.name, info.version, scoring, result, folder)


def _write(folder: Path, table: pd.DataFrame, info: Any, scoring: str) -> None:
    """The CSV and the HTML report, written beside the folder and moved in whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        table.to_csv(staging / "segment_importance.csv", index=False)
        title = html.escape(f"fleet {info.name} v{info.version}: importance by segment")
        body = table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4f}")
        (staging / "report.html").write_text(
            f"<!doctype html><meta charset='utf-8'><title>{title}</title><h1>{title}</h1>"
            f"<p>Permutation importance (drop in {html.escape(scoring)}) of each segment's model "
            f"on its own held-out rows; top features per segment.</p>{body}",
            encoding="utf-8",
        )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
