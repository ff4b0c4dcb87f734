"""Drift report outputs: a self-contained HTML page and a JSON document.

Figures are inline SVG drawn from the small profiles the engine keeps (histogram shares on common
edges, 101 quantiles), so the report never needs the raw rows: no external link, no script, a few
KB per feature.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlfactory.monitoring._drift import DriftReport, FeatureDrift, Status

__all__ = ["ReportFiles", "feature_figure_svg", "render_html", "report_json", "write_report"]

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


_W, _H, _PAD = 300, 120, 22  # one panel, in px; two panels for numeric columns


def _panel(x0: float, body: list[str], low: str, high: str, top: str) -> str:
    """A framed panel at horizontal offset ``x0`` with axis end labels."""
    return (
        f'<g transform="translate({x0:.0f},0)">'
        f'<rect x="{_PAD}" y="4" width="{_W - _PAD - 6}" height="{_H - _PAD - 4}" fill="none" '
        'stroke="#ccc"/>' + "".join(body) + f'<text x="{_PAD}" y="{_H - 6}" font-size="10" '
        f'fill="#555">{html.escape(low)}</text><text x="{_W - 6}" y="{_H - 6}" font-size="10" '
        f'fill="#555" text-anchor="end">{html.escape(high)}</text><text x="{_PAD + 4}" y="15" '
        f'font-size="10" fill="#555">{html.escape(top)}</text></g>'
    )


def _points(xs: list[float], ys: list[float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def feature_figure_svg(feature: FeatureDrift) -> str | None:
    """Overlaid histograms + ECDFs (numeric) or category shares (categorical) as inline SVG.

    Drawn by hand from the engine's small profiles: no plotting library, no raster image, a few
    KB per feature, and milliseconds instead of matplotlib's ~75 ms per figure.
    """
    profile = feature.profile
    if not profile:
        return None
    x_span, y_span, y_base = _W - _PAD - 6, _H - _PAD - 8, _H - _PAD
    parts: list[str] = []
    if feature.kind == "numeric":
        edges = profile["edges"]
        lo, hi = edges[0], edges[-1]
        top = max(max(profile["reference"]), max(profile["current"])) or 1.0

        def x(value: float) -> float:
            return _PAD + x_span * (value - lo) / ((hi - lo) or 1.0)

        hist: list[str] = []
        for shares, color in zip((profile["reference"], profile["current"]), _COLORS, strict=True):
            xs, ys = [x(lo)], [y_base]
            for left, right, share in zip(edges[:-1], edges[1:], shares, strict=True):
                y = y_base - y_span * share / top
                xs += [x(left), x(right)]
                ys += [y, y]
            xs.append(x(hi))
            ys.append(y_base)
            hist.append(
                f'<polygon points="{_points(xs, ys)}" fill="{color}" fill-opacity="0.35" '
                f'stroke="{color}"/>'
            )
        ecdf: list[str] = []
        levels = profile["levels"]
        for quantiles, color in zip(
            (profile["reference_quantiles"], profile["current_quantiles"]), _COLORS, strict=True
        ):
            xs = [min(max(x(q), _PAD), _PAD + x_span) for q in quantiles]
            ys = [y_base - y_span * level for level in levels]
            ecdf.append(
                f'<polyline points="{_points(xs, ys)}" fill="none" stroke="{color}" '
                'stroke-width="1.5"/>'
            )
        parts.append(_panel(0, hist, f"{lo:.4g}", f"{hi:.4g}", "share"))
        parts.append(_panel(_W, ecdf, f"{lo:.4g}", f"{hi:.4g}", "ECDF"))
        width = 2 * _W
    else:
        categories = profile["categories"]
        top = max(max(profile["reference"]), max(profile["current"])) or 1.0
        slot = x_span / max(len(categories), 1)
        bars: list[str] = []
        for i, (ref, cur) in enumerate(zip(profile["reference"], profile["current"], strict=True)):
            for offset, share, color in ((0.1, ref, _COLORS[0]), (0.5, cur, _COLORS[1])):
                height = y_span * share / top
                bars.append(
                    f'<rect x="{_PAD + slot * (i + offset):.1f}" y="{y_base - height:.1f}" '
                    f'width="{slot * 0.4:.1f}" height="{height:.1f}" fill="{color}"/>'
                )
            bars.append(
                f'<text x="{_PAD + slot * (i + 0.5):.1f}" y="{y_base + 10}" font-size="9" '
                f'text-anchor="middle" fill="#333">{html.escape(str(categories[i])[:10])}</text>'
            )
        parts.append(_panel(0, bars, "", "", f"{top:.2f}"))
        width = _W
    label = html.escape(feature.column)
    return (
        f'<svg viewBox="0 0 {width} {_H}" width="{width}" height="{_H}" role="img" '
        f'aria-label="{label}" class="figure">{"".join(parts)}</svg>'
    )


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
    figure = feature_figure_svg(feature)
    image = figure if figure else f"<p>{html.escape(feature.reason)}</p>"
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
