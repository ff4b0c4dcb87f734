"""Drift report outputs: a self-contained HTML page and a JSON document.

Figures are drawn with ``matplotlib.figure.Figure`` (no pyplot state) from the small profiles the
engine keeps (histogram shares on common edges, 101 quantiles), so the report never needs the raw
rows, and embedded as base64 PNG: no external link, ~15 KB per feature.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlfactory.monitoring._drift import DriftReport, FeatureDrift, Status

__all__ = ["ReportFiles", "feature_figure_png", "render_html", "report_json", "write_report"]

_COLORS = ("#4c72b0", "#dd8452")
_STATUS_COLOR = {Status.DRIFT: "#c0392b", Status.OK: "#27ae60", Status.NOT_TESTABLE: "#7f8c8d"}


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def feature_figure_png(feature: FeatureDrift, dpi: int = 60) -> bytes | None:
    """Overlaid histograms + ECDFs (numeric) or category shares (categorical) as PNG bytes."""
    from matplotlib.figure import Figure

    profile = feature.profile
    if not profile:
        return None
    figure = Figure(figsize=(7.5, 2.4), dpi=dpi)
    if feature.kind == "numeric":
        left, right = figure.subplots(1, 2)
        edges = profile["edges"]
        for share, color, label in zip(
            (profile["reference"], profile["current"]), _COLORS, ("reference", "current"),
            strict=True,
        ):  # fmt: skip
            left.stairs(share, edges, color=color, fill=True, alpha=0.35, label=label)
            left.stairs(share, edges, color=color)
        levels = profile["levels"]
        right.plot(profile["reference_quantiles"], levels, color=_COLORS[0], label="reference")
        right.plot(profile["current_quantiles"], levels, color=_COLORS[1], label="current")
        axes = (left, right)
    else:
        ax = figure.subplots(1, 1)
        positions = range(len(profile["categories"]))
        ax.bar([p - 0.2 for p in positions], profile["reference"], 0.4, color=_COLORS[0],
               label="reference")  # fmt: skip
        ax.bar([p + 0.2 for p in positions], profile["current"], 0.4, color=_COLORS[1],
               label="current")  # fmt: skip
        ax.set_xticks(list(positions), [c[:12] for c in profile["categories"]], fontsize=7)
        axes = (ax,)
    for ax in axes:  # few ticks: tick text is most of the drawing time
        ax.tick_params(labelsize=7)
        ax.locator_params(axis="y", nbins=3)
        if feature.kind == "numeric":
            ax.locator_params(axis="x", nbins=4)
    if feature.kind == "numeric":
        axes[0].set_yticks([])  # histogram heights: the shape is what matters
        axes[1].set_yticks([0.0, 0.5, 1.0])
    # fixed margins, no titles or legends (the page says what is drawn): text layout is most of
    # matplotlib's time, and tight_layout alone would cost a third of it
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.96, wspace=0.18)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}.badge{color:#fff;padding:2px 6px;
border-radius:3px}section{margin:1.2em 0;border-top:1px solid #ddd;padding-top:.5em}
h2 small{font-weight:normal;color:#666}
"""


def _badge(status: str) -> str:
    color = _STATUS_COLOR[Status(status)]
    return f'<span class="badge" style="background:{color}">{html.escape(status)}</span>'


def _rows(features: list[FeatureDrift]) -> str:
    rows = []
    for f in features:
        rows.append(
            "<tr>"
            f'<td class="l">{html.escape(f.column)}</td><td class="l">{f.kind}</td>'
            f"<td>{_badge(f.status)}</td><td>{f.test}</td><td>{_fmt(f.statistic)}</td>"
            f"<td>{_fmt(f.p_value)}</td><td>{_fmt(f.p_adjusted)}</td>"
            f'<td>{_fmt(f.effect)}</td><td class="l">{f.effect_name}</td>'
            f"<td>{_fmt(f.psi)}</td><td>{_fmt(f.js_distance)}</td>"
            f"<td>{f.n_reference}</td><td>{f.n_current}</td>"
            f'<td class="l">{html.escape(f.reason)}</td></tr>'
        )
    return "".join(rows)


_HEADER = (
    '<tr><th class="l">column</th><th class="l">kind</th><th>status</th><th>test</th>'
    "<th>statistic</th><th>p-value</th><th>p adj. (BH)</th><th>effect</th>"
    '<th class="l">effect measure</th><th>PSI</th><th>JS dist.</th><th>n ref</th><th>n cur</th>'
    '<th class="l">note</th></tr>'
)


def _section(feature: FeatureDrift, title: str | None = None) -> str:
    png = feature_figure_png(feature)
    image = (
        f'<img alt="{html.escape(feature.column)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        if png
        else f"<p>{html.escape(feature.reason)}</p>"
    )
    return (
        f"<section><h3>{html.escape(title or feature.column)} {_badge(feature.status)}</h3>"
        f"{image}</section>"
    )


def render_html(report: DriftReport) -> str:
    """The whole report as one HTML string with inline CSS and images (no external link)."""
    doc = report.to_dict()
    verdict = "DRIFT" if report.drifted else "no drift"
    color = "#c0392b" if report.drifted else "#27ae60"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report.reasons) or "<li>none</li>"
    window = ""
    if report.window_start or report.window_end:
        window = f"<p>window: {doc['window_start']} to {doc['window_end']}</p>"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Drift report {html.escape(report.current)}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>Drift report: <span style='color:{color}'>{verdict}</span></h1>",
        f"<p>reference: {html.escape(report.reference)} ({report.n_reference} rows) — current: "
        f"{html.escape(report.current)} ({report.n_current} rows)"
        + (f" — model: {html.escape(report.model)}" if report.model else "")
        + f" — created {doc['created_at']}</p>",
        window,
        f"<p>{len(report.drifted_features)} of {len(report.tested)} tested features drifted "
        f"(share {report.share_drifted:.2f}); rule: BH-adjusted p &lt; {report.config.alpha} and "
        f"effect &ge; {report.config.min_effect_numeric} sd (numeric, Wasserstein) / "
        f"{report.config.min_effect_categorical} (categorical, total variation).</p>",
        f"<h2>Why</h2><ul>{reasons}</ul>",
        f"<h2>Features</h2><table>{_HEADER}{_rows(report.ordered_features())}</table>",
    ]
    extra = report.predictions + report.labels
    if extra:
        parts.append(f"<h2>Predictions and labels</h2><table>{_HEADER}{_rows(extra)}</table>")
    if report.multivariate is not None:
        m = report.multivariate
        parts.append(
            "<h2>Multivariate (domain classifier)</h2>"
            f"<p>cross-validated AUC {m.auc:.3f}; permutation threshold {m.threshold:.3f} "
            f"({len(m.permutation_aucs)} shuffles); p = {m.p_value:.3f}; "
            f"{'drifted' if m.drifted else 'not drifted'}; {m.n_per_side} rows per side.</p>"
        )
    parts.append(
        "<h2>Distributions <small>(drifted first)</small></h2><p>Numeric: histogram (share of "
        "rows) and ECDF; categorical: share of rows per category (top 12). "
        f"<span style='color:{_COLORS[0]}'>&#9632; reference</span> "
        f"<span style='color:{_COLORS[1]}'>&#9632; current</span></p>"
    )
    parts.extend(_section(f) for f in report.ordered_features())
    parts.extend(_section(f, f"{f.column} (predictions/labels)") for f in extra)
    parts.append("</body></html>")
    return "".join(parts)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def report_json(report: DriftReport) -> str:
    """The report as JSON text (no raw rows, no plot data)."""
    return json.dumps(report.to_dict(), indent=2, default=_json_default)


def write_report(report: DriftReport, out_dir: Path | str, stem: str = "drift") -> ReportFiles:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``out_dir`` (created); return both paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    html_text = render_html(report)
    json_text = report_json(report)
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    html_path.write_text(html_text, encoding="utf-8")
    json_path.write_text(json_text, encoding="utf-8")
    return ReportFiles(html_path, json_path)
