"""Explaining a fleet, segment by segment, on each segment's own held-out rows.

By default: permutation importance of every segment's model (and the fallback), one table (CSV)
and one HTML report. With ``segments``: those segments' models get what a single model gets
(permutation importance, partial dependence, SHAP: ``mlfactory.explain.explain_frame``), each
written by the single-model report writer into ``segments/<key>/``, and one ``report.html``
with every chosen segment's tables and figures.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.exceptions import DataError
from mlfactory.fleet._plan import FALLBACK_KEY
from mlfactory.settings import Settings

__all__ = ["FleetExplanation", "explain_fleet", "segment_folder"]

MIN_ROWS = 20
FALLBACK_NAMES = ("fallback", FALLBACK_KEY)


@dataclass
class FleetExplanation:
    model: str
    version: str
    scoring: str
    table: pd.DataFrame  # segment, rows, status, rank, feature, mean, std
    folder: Path | str  # a local folder, or where on the object store the files went
    explanations: dict[str, Any] = field(default_factory=dict)  # key -> explain.Explanation
    run_id: str = ""  # the version's training run

    @property
    def html(self) -> Path | str:
        return self.file("report.html")

    def file(self, name: str) -> Path | str:
        if isinstance(self.folder, Path):
            return self.folder / name
        return f"{self.folder.rstrip('/')}/{name}"


def segment_folder(key: str) -> str:
    """A file-system-safe folder name for segment ``key`` (a short hash when it had to change)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", key).strip(".") or "segment"
    if safe != key:
        safe += "-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    return safe


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


def _chosen(
    segments: Sequence[str], entries: dict[str, Any], manifest: dict[str, Any]
) -> list[str]:
    """The manifest keys of ``segments`` (``fallback`` names the fallback); unknown or small
    segments are refused in one line naming them."""
    chosen: list[str] = []
    small = set(manifest.get("small_segments") or [])
    for name in dict.fromkeys(segments):
        key = FALLBACK_KEY if name in FALLBACK_NAMES else name
        if key in entries:
            chosen.append(key)
        elif key in small:
            raise DataError(
                f"--segment {name!r}: a small segment has no model of its own (the fallback "
                "scores it); explain the fallback with --segment fallback"
            )
        else:
            known = sorted(k for k in entries if k != FALLBACK_KEY)
            shown = ", ".join(known[:10]) + (f" … ({len(known)} in all)" if len(known) > 10 else "")
            raise DataError(f"--segment {name!r}: no such segment in the fleet; it has: {shown}")
    return chosen


def explain_fleet(
    settings: Settings,
    reference: str,
    *,
    segments: Sequence[str] = (),
    max_rows: int = 500,
    n_repeats: int = 5,
    top_k: int = 5,
    seed: int = 0,
    out: str | Path | None = None,
    log_to_run: bool = False,
) -> FleetExplanation | None:
    """Per-segment explanation of fleet ``reference``; ``None`` when it is a single model.

    ``segments``: explain only these segments' models, fully (importance, partial dependence,
    SHAP); otherwise rank every segment model's features by permutation importance. With
    ``log_to_run`` the files are also logged on the version's training run, under ``explain/``.
    """
    from mlfactory.fleet._version import open_fleet

    with open_fleet(settings, reference, ["heldout.parquet"]) as opened:
        if opened is None:
            return None
        info, manifest = opened.info, opened.manifest
        heldout = opened.frames["heldout.parquet"]
        features = list(manifest["features"])
        target = next(c for c in heldout.columns if c not in features and c != "__segment__")
        scoring = manifest.get("refit") or ("accuracy" if manifest.get("classes") else "r2")
        groups = heldout.groupby("__segment__", sort=True).indices
        entries = opened.entries()
        keys = _chosen(segments, entries, manifest) if segments else sorted(entries)
        rows: list[dict[str, Any]] = []
        explanations: dict[str, Any] = {}
        for key in keys:
            positions = np.arange(len(heldout)) if key == FALLBACK_KEY else groups.get(key)
            count = 0 if positions is None else len(positions)
            if count < MIN_ROWS or heldout[target].iloc[positions].nunique() < 2:
                if segments:
                    raise DataError(
                        f"--segment {key!r}: {count} held-out row(s)"
                        + (" of one class" if count >= MIN_ROWS else "")
                        + f"; at least {MIN_ROWS} of two classes are needed to explain it"
                    )
                rows.append({"segment": key, "rows": count, "status": "too few rows"})
                continue
            X, y = heldout.iloc[positions][features], heldout.iloc[positions][target]
            if segments:
                explanation = _explain_segment(
                    opened, key, X, y, scoring, max_rows, n_repeats, top_k, seed
                )
                explanations[key] = explanation
                table = explanation.importance.table.head(top_k)
                used = explanation.rows
            else:
                if count > max_rows:
                    picked = np.random.default_rng(seed).choice(count, max_rows, replace=False)
                    X, y = X.iloc[picked], y.iloc[picked]
                table = _importance(opened.load(key), X, y, scoring, n_repeats, seed).head(top_k)
                used = len(X)
            for rank, item in enumerate(table.itertuples(index=False), start=1):
                rows.append(
                    {"segment": key, "rows": used, "status": "explained",
                     "rank": rank, "feature": item.feature, "mean": float(item.mean),
                     "std": float(item.std)}
                )  # fmt: skip
    result = pd.DataFrame(rows)
    default = f"fleet-{info.name}-v{info.version}"
    if segments:
        default += "-" + "-".join(segment_folder(k) for k in keys)[:80]
    from mlfactory.storage import report_folder  # HOME/reports or the object store

    with report_folder(settings, out, "explain", default) as target:
        _write(target.local, result, info, scoring, explanations, top_k)
        if log_to_run:  # one call: the whole folder, as the training logged the bundle
            from mlfactory.tracking import open_tracking

            open_tracking(settings).log_artifacts(info.run_id, str(target.local), "explain")
    folder = target.local if not target.remote else target.destination
    return FleetExplanation(
        info.name, info.version, scoring, result, folder, explanations, info.run_id
    )


def _explain_segment(
    opened: Any, key: str, X: pd.DataFrame, y: pd.Series, scoring: str,
    max_rows: int, n_repeats: int, top_k: int, seed: int,
) -> Any:  # fmt: skip
    """What a single model gets, for one segment's model on its own held-out rows."""
    import warnings

    from mlfactory.explain import ExplainModel, explain_frame

    info, manifest = opened.info, opened.manifest
    name = "the fallback" if key == FALLBACK_KEY else f"segment {key}"
    model = ExplainModel(
        pipeline=opened.load(key),
        run_id=info.run_id,
        label=f"{info.name} v{info.version}, {name}",
        input_columns=list(manifest["features"]),
        classes=list(manifest.get("classes") or []),
        params={"refit": scoring},
    )
    source = "every held-out row" if key == FALLBACK_KEY else f"held-out rows of {name}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        return explain_frame(
            model, X, y, max_rows=max_rows, n_repeats=n_repeats, top_k=top_k, scoring=scoring,
            seed=seed, data_source=source,
        )  # fmt: skip


def _segment_sections(explanations: dict[str, Any], files: dict[str, dict[str, Path]], top_k: int):
    from mlfactory.explain import PLOTS

    def table(frame: pd.DataFrame) -> str:
        return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)

    for key, e in explanations.items():
        name = "fallback" if key == FALLBACK_KEY else key
        folder = segment_folder(key)
        images = "".join(
            f"<h3>{html.escape(PLOTS[stem][0])}</h3><img alt='{html.escape(stem)}' "
            f"src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'>"
            for stem, path in files[key].items()
            if stem in PLOTS
        )
        yield (
            f"<section><h2>Segment {html.escape(name)}</h2><p>{e.rows} of {e.total_rows} "
            f"held-out rows; SHAP: {html.escape(str(e.shap.kind))} explainer, scale "
            f"{html.escape(e.shap.scale)}; files: <a href='segments/{folder}/report.html'>"
            f"segments/{html.escape(folder)}/</a></p>"
            f"<h3>Permutation importance (drop in {html.escape(e.importance.scoring)})</h3>"
            f"{table(e.importance.table.head(top_k))}"
            f"<h3>Mean |SHAP| ({html.escape(e.shap.scale)})</h3>"
            f"{table(e.shap.mean_abs().head(top_k))}{images}</section>"
        )


def _write(
    folder: Path, table: pd.DataFrame, info: Any, scoring: str,
    explanations: dict[str, Any], top_k: int,
) -> None:  # fmt: skip
    """The CSV, each explained segment's single-model report and the HTML report, written beside
    the folder and moved in whole."""
    from mlfactory.explain import write_report

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        table.to_csv(staging / "segment_importance.csv", index=False)
        files = {
            key: write_report(e, staging / "segments" / segment_folder(key), top_k)
            for key, e in explanations.items()
        }
        what = "explained by segment" if explanations else "importance by segment"
        title = html.escape(f"fleet {info.name} v{info.version}: {what}")
        body = table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4f}")
        intro = (
            "Permutation importance, partial dependence and SHAP of each chosen segment's model "
            "on its own held-out rows (the fallback on every held-out row)."
            if explanations
            else f"Permutation importance (drop in {html.escape(scoring)}) of each segment's "
            "model on its own held-out rows; top features per segment."
        )
        (staging / "report.html").write_text(
            f"<!doctype html><meta charset='utf-8'><title>{title}</title><h1>{title}</h1>"
            f"<p>{intro}</p>{body}{''.join(_segment_sections(explanations, files, top_k))}",
            encoding="utf-8",
        )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
