"""Explanation reports: compute everything, draw it, write PNGs + one HTML file, log to MLflow.

``explain_frame`` is pure (a model and DataFrames in, tables out); ``write_report`` writes files;
``explain_model`` adds the edges: open the model, read the data, log the files on the run.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from mlfactory.exceptions import DataError
from mlfactory.explain._data import load_explain_data, sample_rows
from mlfactory.explain._importance import PermutationImportance, permutation_importance_table
from mlfactory.explain._model import ExplainModel, open_model
from mlfactory.explain._pdp import (
    PartialDependence,
    categorical_columns,
    partial_dependence_tables,
    top_pair,
)
from mlfactory.explain._plots import (
    importance_figure,
    pdp_figure,
    pdp_pair_figure,
    shap_bar_figure,
    shap_beeswarm_figure,
    shap_waterfall_figure,
)
from mlfactory.explain._shap import ExplainerKind, ShapExplainer, ShapValues
from mlfactory.logs import get_logger
from mlfactory.settings import Settings
from mlfactory.tracking import open_tracking

__all__ = [
    "KERNEL_MAX_ROWS",
    "PLOTS",
    "TABLES",
    "ExplainReport",
    "Explanation",
    "explain_frame",
    "explain_model",
    "write_report",
]

logger = get_logger(__name__)
Progress = Callable[[str], None]

#: The model-agnostic (kernel) explainer explains at most this many rows of the sample.
KERNEL_MAX_ROWS = 100
#: Plot file stem -> (title, what it shows), in report order.
PLOTS: dict[str, tuple[str, str]] = {
    "importance": (
        "Permutation importance",
        "How much the score drops when one input column is shuffled, over the repeats. "
        "Model-agnostic; computed on the raw input columns.",
    ),
    "pdp": (
        "Partial dependence (one-way)",
        "Average model output as one of the most important features varies over its range, "
        "the others kept as observed. Ticks on the x axis are the feature's deciles.",
    ),
    "pdp_pair": (
        "Partial dependence (two-way)",
        "Average model output over a grid of the two most important features: interactions "
        "show as contours that are not parallel.",
    ),
    "shap_bar": (
        "Mean |SHAP|",
        "Average absolute contribution of each preprocessed feature to the model output.",
    ),
    "shap_beeswarm": (
        "SHAP beeswarm",
        "One dot per row and feature: its contribution (x) coloured by the feature's value.",
    ),
    "shap_waterfall": (
        "SHAP waterfall (one row)",
        "How each feature moves this row's output from the base value to the model output.",
    ),
}


@dataclass
class Explanation:
    """Every table of an explanation, and what it was computed on."""

    model_label: str
    run_id: str
    data_source: str
    rows: int  # rows used for importance and partial dependence
    total_rows: int  # rows available before sampling
    importance: PermutationImportance
    pdp: PartialDependence
    shap: ShapValues
    row: int  # position of the waterfall's row in the data
    row_shap: ShapValues
    note: str = ""


def explain_frame(
    model: ExplainModel,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    row: int = 0,
    max_rows: int | None = 500,
    n_repeats: int = 5,
    top_k: int = 5,
    scoring: str | None = None,
    seed: int = 0,
    data_source: str = "data",
    note: str = "",
    progress: Progress | None = None,
) -> Explanation:
    """Permutation importance, partial dependence and SHAP of ``model`` on ``X``/``y``.

    ``max_rows`` bounds the cost by a seeded sample; ``row`` (a position in ``X``, before
    sampling) is the observation of the SHAP waterfall.
    """
    say = progress or (lambda _message: None)
    if not 0 <= row < len(X):
        raise DataError(f"--row {row} out of range: the data has {len(X)} rows (0..{len(X) - 1})")
    if top_k < 1:
        raise DataError(f"--top-k must be at least 1, got {top_k}")
    pipeline = model.pipeline
    X_used, y_used = sample_rows(X, y, max_rows, seed)
    scoring = scoring or model.refit_metric
    say(f"permutation importance ({n_repeats} repeats x {X_used.shape[1]} columns)")
    importance = permutation_importance_table(
        pipeline, X_used, y_used, scoring=scoring, n_repeats=n_repeats, seed=seed
    )
    top = importance.top(top_k)
    pair = top_pair(importance.table["feature"].tolist(), categorical_columns(X_used, pipeline))
    say(f"partial dependence of {', '.join(top)}")
    pdp = partial_dependence_tables(pipeline, X_used, top, pair=pair)
    explainer = ShapExplainer(pipeline, X_used, seed=seed)
    X_shap = X_used
    if explainer.kind == ExplainerKind.KERNEL:
        X_shap, _ = sample_rows(X_used, y_used, KERNEL_MAX_ROWS, seed)
    say(f"SHAP values ({explainer.kind} explainer, {len(X_shap)} rows)")
    shap_result = explainer.explain(X_shap)
    row_shap = explainer.explain(X.iloc[[row]])
    return Explanation(
        model_label=model.label,
        run_id=model.run_id,
        data_source=data_source,
        rows=len(X_used),
        total_rows=len(X),
        importance=importance,
        pdp=pdp,
        shap=shap_result,
        row=row,
        row_shap=row_shap,
        note=note,
    )


def _figures(explanation: Explanation, top_k: int) -> dict[str, Figure]:
    figures = {
        "importance": importance_figure(explanation.importance, top_k=max(top_k, 10)),
        "pdp": pdp_figure(explanation.pdp),
    }
    if explanation.pdp.pair is not None:
        figures["pdp_pair"] = pdp_pair_figure(explanation.pdp)
    figures["shap_bar"] = shap_bar_figure(explanation.shap)
    figures["shap_beeswarm"] = shap_beeswarm_figure(explanation.shap)
    title = f"SHAP waterfall, data row {explanation.row} ({explanation.row_shap.scale})"
    figures["shap_waterfall"] = shap_waterfall_figure(explanation.row_shap, 0, title=title)
    return figures


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, escape=True)


def _html(explanation: Explanation, images: dict[str, Path], top_k: int) -> str:
    e = explanation
    shap_ = e.shap
    cls = f", class {shap_.class_label}" if shap_.class_label is not None else ""
    facts = [
        ("model", e.model_label),
        ("run", e.run_id),
        ("data", e.data_source),
        (
            "rows used",
            f"{e.rows} of {e.total_rows} (seeded sample)"
            if e.rows < e.total_rows
            else f"{e.rows} (all)",
        ),
        ("SHAP rows", f"{len(shap_.values)} ({shap_.kind} explainer)"),
        ("SHAP scale", f"{shap_.scale}{cls}; base value {shap_.base_value:.4g}"),
        ("scoring", f"{e.importance.scoring} = {e.importance.baseline:.4g} on the rows used"),
        ("waterfall row", str(e.row)),
        ("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    if e.note:
        facts.append(("note", e.note))
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts
    )
    sections = []
    for stem, path in images.items():
        title, text = PLOTS[stem]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        sections.append(
            f"<section><h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>"
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(title)}"></section>'
        )
    top_importance = _table_html(e.importance.table.head(top_k))
    top_shap = _table_html(shap_.mean_abs().head(top_k))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Explanation of {html.escape(e.model_label)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Explanation of {html.escape(e.model_label)}</h1>
<p>Computed on {e.rows} rows ({html.escape(e.data_source)}).</p>
<table>{rows}</table>
<h2>Top features</h2>
<h3>Permutation importance</h3>{top_importance}
<h3>Mean |SHAP| ({html.escape(shap_.scale)})</h3>{top_shap}
{"".join(sections)}
</body></html>
"""


TABLES = ("importance.csv", "pdp_one_way.csv", "pdp_two_way.csv", "shap_values.csv")


def write_report(explanation: Explanation, out_dir: Path, top_k: int = 5) -> dict[str, Path]:
    """Write the PNGs, CSV tables and ``report.html`` (images embedded) into ``out_dir``.

    Returns every written file by name (plot stems, table file names, ``report``). Files a
    previous report left in ``out_dir`` under the same names are replaced or removed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*(f"{stem}.png" for stem in PLOTS), *TABLES, "report.html"]:
        (out_dir / stale).unlink(missing_ok=True)
    files: dict[str, Path] = {}
    for stem, figure in _figures(explanation, top_k).items():
        path = out_dir / f"{stem}.png"
        figure.savefig(path, dpi=90)
        files[stem] = path
    images = dict(files)
    e = explanation
    tables = {
        "importance.csv": (e.importance.table, False),
        "pdp_one_way.csv": (e.pdp.one_way, False),
        "pdp_two_way.csv": (e.pdp.two_way, False),
        "shap_values.csv": (e.shap.values, True),
    }
    for name, (frame, index) in tables.items():
        if frame is not None:
            frame.to_csv(out_dir / name, index=index)
            files[name] = out_dir / name
    report = out_dir / "report.html"
    report.write_text(_html(explanation, images, top_k), encoding="utf-8")
    files["report"] = report
    return files


@dataclass
class ExplainReport:
    """What ``explain_model`` produced: the explanation, the files and where they were logged."""

    explanation: Explanation
    out_dir: Path
    files: dict[str, Path]
    artifact_uri: str | None = None

    @property
    def html(self) -> Path:
        return self.files["report"]


def explain_model(
    settings: Settings,
    reference: str,
    *,
    data: str | None = None,
    row: int = 0,
    max_rows: int | None = 500,
    n_repeats: int = 5,
    top_k: int = 5,
    scoring: str | None = None,
    out: Path | str | None = None,
    seed: int = 0,
    log_to_run: bool = True,
    progress: Progress | None = None,
    allow_unverified: bool = False,
) -> ExplainReport:
    """Explain a run's model (``RUN_ID``) or a registered one (``NAME[@alias]``) end to end.

    Data: ``data`` (file or dataset name), by default the run's held-out test set. Files go to
    ``out`` (default ``HOME/reports/explain/RUN_ID``) and, with ``log_to_run``, to the run's
    artifacts under ``explain/``.
    """
    say = progress or (lambda _message: None)
    say(f"loading model {reference}")
    model = open_model(settings, reference, allow_unverified=allow_unverified)
    say("loading data")
    loaded = load_explain_data(settings, model, data)
    explanation = explain_frame(
        model,
        loaded.X,
        loaded.y,
        row=row,
        max_rows=max_rows,
        n_repeats=n_repeats,
        top_k=top_k,
        scoring=scoring,
        seed=seed,
        data_source=loaded.source,
        note=loaded.note,
        progress=say,
    )
    from mlfactory.storage import report_folder  # HOME/reports or the object store

    with report_folder(settings, out, "explain", model.run_id) as folder:
        say(f"writing the report to {folder.destination}")
        written = write_report(explanation, folder.local, top_k)
        artifact_uri = None
        if log_to_run:
            say("logging the report on the run")
            client = open_tracking(settings)
            for path in written.values():  # only our files, whatever else --out holds
                client.log_artifact(model.run_id, str(path), "explain")
            artifact_uri = f"{client.get_run(model.run_id).info.artifact_uri}/explain"
    files = {name: folder.shown(path) for name, path in written.items()}
    out_dir = folder.local if not folder.remote else folder.destination
    logger.info("explained %s on %d rows: %s", model.label, explanation.rows, files["report"])
    return ExplainReport(explanation, out_dir, files, artifact_uri)
