"""Drift of a fleet, segment by segment: each segment's training rows vs its own traffic.

The reference is the fleet training's ``reference_sample.parquet`` (up to 300 training rows of
every segment, with ``__segment__``); the current sample is the prediction log of the window for
the version (or, for a line's baseline, the held-out rows), cut by the segment columns. Each
segment with enough rows on both sides gets the same tests and decision rule as a single model
(``detect_drift``); the fleet drifts when any segment does.

The result is published like a single model's report (:func:`publish_fleet_drift`): a
:class:`FleetDriftReport` is a ``DriftReport`` whose rows are segments, so the same JSON writer,
the same ``drift_reports`` row and the dashboard's drift pages serve it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mlfactory.exceptions import DataError, SpecError
from mlfactory.fleet._plan import segment_keys
from mlfactory.monitoring._drift import DriftConfig, DriftReport, FeatureDrift, Status
from mlfactory.settings import Settings

__all__ = [
    "FleetDrift",
    "FleetDriftReport",
    "PublishedFleetDrift",
    "fleet_baseline",
    "fleet_drift",
    "monitor_fleet",
    "publish_fleet_drift",
    "render_fleet_html",
]

SEGMENT_KIND = "segment"


@dataclass
class FleetDriftReport(DriftReport):
    """A drift report whose rows (``features``) are the fleet's segments.

    Each row carries its segment's worst column (test, statistic, p-values, effect) and, in
    ``details``, its drifted columns; ``segment_reports`` holds every judged segment's own
    column-by-column report. The fleet drifts when any segment does.
    """

    version: str = ""
    by: list[str] = field(default_factory=list)
    segment_reports: dict[str, DriftReport] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        drifted = self.drifted_features
        if not drifted:
            return []
        shown = ", ".join(drifted[:20]) + (
            f" (+{len(drifted) - 20} more)" if len(drifted) > 20 else ""
        )
        return [f"drift in {len(drifted)} of {len(self.tested)} segment(s) judged: {shown}"]

    def to_dict(self, profile: bool = False) -> dict[str, Any]:
        document = super().to_dict(profile)
        document["fleet"] = {
            "version": self.version,
            "by": self.by,
            "segments_judged": len(self.tested),
            "segments_drifted": self.drifted_features,
            # column verdicts of the drifted segments (the others: their summary row only)
            "drifted_segment_columns": {
                key: [f.to_dict() for f in report.ordered_features()]
                for key, report in self.segment_reports.items()
                if report.drifted
            },
        }
        return document


@dataclass
class FleetDrift:
    model: str
    version: str
    window: str
    table: pd.DataFrame  # segment, reference_rows, current_rows, status, share_drifted,
    # drifted_features, worst_feature, worst_test, worst_statistic, worst_effect
    report: FleetDriftReport | None = None

    @property
    def drifted(self) -> bool:
        return bool((self.table["status"] == "drift").any())

    @property
    def drifted_segments(self) -> list[str]:
        return self.table.loc[self.table["status"] == "drift", "segment"].tolist()


def _worst(report: DriftReport) -> FeatureDrift | None:
    """The column with the largest effect among the drifted ones, else among the tested."""
    pool = [f for f in report.features if f.drifted] or report.tested
    return max(pool, key=lambda f: f.effect or 0.0) if pool else None


def _segment_row(
    key: str, report: DriftReport | None, n_ref: int, n_cur: int, min_rows: int
) -> FeatureDrift:
    """The segment's summary as a ``FeatureDrift`` row of the fleet report."""
    if report is None:
        return FeatureDrift(
            column=key, kind=SEGMENT_KIND, status=Status.NOT_TESTABLE,
            reason=f"too few rows ({n_ref} training, {n_cur} current; {min_rows} needed)",
            n_reference=n_ref, n_current=n_cur,
        )  # fmt: skip
    worst = _worst(report)
    drifted = report.drifted_features
    reason = (
        f"drifted: {', '.join(drifted)} ({len(drifted)} of {len(report.tested)} columns)"
        if report.drifted
        else f"{len(drifted)} of {len(report.tested)} columns drifted"
    )
    row = FeatureDrift(
        column=key,
        kind=SEGMENT_KIND,
        status=Status.DRIFT if report.drifted else Status.OK,
        reason=reason,
        n_reference=n_ref,
        n_current=n_cur,
        details={
            "drifted_features": drifted,
            "share_drifted": report.share_drifted,
            "worst_feature": worst.column if worst else None,
        },
    )
    if worst is not None:
        row.test, row.statistic, row.p_value = worst.test, worst.statistic, worst.p_value
        row.p_adjusted, row.effect, row.effect_name = (
            worst.p_adjusted,
            worst.effect,
            worst.effect_name,
        )
        row.psi, row.js_distance = worst.psi, worst.js_distance
    return row


def fleet_drift(
    manifest: dict[str, Any],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | None = None,
    *,
    min_rows: int = 30,
    names: tuple[str, str] = ("training", "traffic"),
) -> tuple[pd.DataFrame, list[FeatureDrift], dict[str, DriftReport]]:
    """Per-segment drift (pure): the table, one summary row per segment, the segments' reports.

    ``reference`` holds the training sample (``__segment__`` or the segment columns);
    ``current`` holds the segment columns and the features.
    """
    from mlfactory.monitoring import detect_drift
    from mlfactory.monitoring._model import _as_feature

    by = list(manifest["by"])
    features = [c for c in manifest["features"] if c in reference.columns and c in current.columns]
    features = [c for c in features if c not in by]  # constant within a segment
    ref_keys = (
        reference["__segment__"].astype(str)
        if "__segment__" in reference.columns
        else segment_keys(reference, by)
    )
    cur_keys = segment_keys(current, by)
    config = config or DriftConfig()
    rows, summaries, reports = [], [], {}
    for key in sorted(set(cur_keys) | set(ref_keys)):
        ref = reference.loc[(ref_keys == key).to_numpy(), features]
        cur_raw = current.loc[(cur_keys == key).to_numpy(), features]
        report = None
        if len(ref) >= min_rows and len(cur_raw) >= min_rows:
            cur = pd.DataFrame({c: _as_feature(cur_raw[c], ref[c]) for c in features})
            report = detect_drift(ref, cur, features, config, names=names)
            reports[key] = report
        summary = _segment_row(key, report, len(ref), len(cur_raw), min_rows)
        summaries.append(summary)
        worst = (summary.details or {}).get("worst_feature")
        rows.append(
            {
                "segment": key,
                "reference_rows": len(ref),
                "current_rows": len(cur_raw),
                "status": "too few rows"
                if report is None
                else ("drift" if report.drifted else "no drift"),
                "share_drifted": None if report is None else report.share_drifted,
                "drifted_features": [] if report is None else report.drifted_features,
                "worst_feature": worst,
                "worst_test": summary.test or None,
                "worst_statistic": summary.statistic,
                "worst_effect": summary.effect,
            }
        )
    return pd.DataFrame(rows), summaries, reports


def _fleet_report(
    opened: Any,
    summaries: list[FeatureDrift],
    reports: dict[str, DriftReport],
    config: DriftConfig,
    *,
    reference: str,
    current: str,
    n_reference: int,
    n_current: int,
    window: tuple[datetime | None, datetime | None] = (None, None),
) -> FleetDriftReport:
    return FleetDriftReport(
        features=summaries,
        config=config,
        reference=reference,
        current=current,
        n_reference=n_reference,
        n_current=n_current,
        model=opened.info.name,
        window_start=window[0],
        window_end=window[1],
        version=str(opened.info.version),
        by=list(opened.manifest["by"]),
        segment_reports=reports,
    )


def monitor_fleet(
    settings: Settings,
    reference: str,
    since: str | datetime | None = "24h",
    until: str | datetime | None = None,
    config: Any = None,
    *,
    min_rows: int = 30,
) -> FleetDrift | None:
    """Per-segment drift of fleet ``reference`` over the window; ``None`` if it is one model."""
    from mlfactory.db import get_engine
    from mlfactory.fleet._version import open_fleet
    from mlfactory.monitoring._model import parse_time
    from mlfactory.prediction_log import read_prediction_log

    now = datetime.now(UTC)
    start, end = parse_time(since, now), parse_time(until, now)
    if start is not None and end is not None and start >= end:
        raise SpecError(f"window start {start.isoformat()} is not before end {end.isoformat()}")
    with open_fleet(settings, reference, ["reference_sample.parquet"]) as opened:
        if opened is None:
            return None
        info = opened.info
        window = f"{start.isoformat() if start else 'start'} to {end.isoformat() if end else 'now'}"
        logged = read_prediction_log(
            get_engine(settings.database_url), info.name, since=start, until=end,
            model_version=info.version,
        )  # fmt: skip
        if logged.empty:
            raise DataError(f"no predictions logged for {info.name} v{info.version} from {window}")
        sample = opened.frames["reference_sample.parquet"]
        config = config or DriftConfig()
        table, summaries, reports = fleet_drift(
            opened.manifest, sample, logged, config, min_rows=min_rows
        )
        report = _fleet_report(
            opened, summaries, reports, config,
            reference=f"training sample of {opened.label}",
            current=f"prediction log of {opened.label}",
            n_reference=len(sample), n_current=len(logged), window=(start, end),
        )  # fmt: skip
    return FleetDrift(info.name, info.version, window, table, report)


def fleet_baseline(
    settings: Settings, reference: str, config: DriftConfig | None = None, *, min_rows: int = 30
) -> FleetDrift | None:
    """A fleet's drift baseline (the line's ``monitor`` stage): each segment's training sample
    against its own held-out rows of the training run; ``None`` if ``reference`` is one model."""
    from mlfactory.fleet._version import open_fleet

    names = ["reference_sample.parquet", "heldout.parquet"]
    with open_fleet(settings, reference, names) as opened:
        if opened is None:
            return None
        sample, heldout = (opened.frames[n] for n in names)
        config = config or DriftConfig()
        table, summaries, reports = fleet_drift(
            opened.manifest, sample, heldout, config, min_rows=min_rows,
            names=("training sample", "held-out"),
        )  # fmt: skip
        report = _fleet_report(
            opened, summaries, reports, config,
            reference=f"training sample of {opened.label}",
            current=f"held-out rows of {opened.label}",
            n_reference=len(sample), n_current=len(heldout),
        )  # fmt: skip
        info = opened.info
    return FleetDrift(info.name, info.version, "held-out rows", table, report)


def render_fleet_html(report: FleetDriftReport) -> str:
    """The fleet's report page: the verdict, one row per segment, then each drifted segment's
    columns and distributions (the single-model report's tables and figures)."""
    from mlfactory.monitoring._report import _CSS, _HEADER, _badge, _fmt, _rows, _section

    verdict = "DRIFT" if report.drifted else "no drift"
    color = "#c0392b" if report.drifted else "#27ae60"
    doc = report.to_dict()
    title = html.escape(f"{report.model} v{report.version}")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report.reasons) or "<li>none</li>"
    segment_rows = "".join(
        "<tr>"
        f'<td class="l">{html.escape(f.column)}</td><td>{_badge(f.status)}</td>'
        f"<td>{f.n_reference}</td><td>{f.n_current}</td>"
        f'<td class="l">{html.escape(", ".join(f.details.get("drifted_features", [])))}</td>'
        f'<td class="l">{html.escape(str(f.details.get("worst_feature") or ""))}</td>'
        f"<td>{f.test}</td><td>{_fmt(f.statistic)}</td><td>{_fmt(f.p_adjusted)}</td>"
        f'<td>{_fmt(f.effect)}</td><td class="l">{html.escape(f.reason)}</td></tr>'
        for f in report.ordered_features()
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Fleet drift report {title}</title><style>{_CSS}</style></head><body>",
        f"<h1>Fleet drift report {title}: <span style='color:{color}'>{verdict}</span></h1>",
        f"<p>reference: {html.escape(report.reference)} ({report.n_reference} rows) — current: "
        f"{html.escape(report.current)} ({report.n_current} rows) — segments by "
        f"{html.escape(', '.join(report.by))} — created {doc['created_at']}</p>",
        f"<p>window: {doc['window_start']} to {doc['window_end']}</p>"
        if report.window_start or report.window_end
        else "",
        f"<p>{len(report.drifted_features)} of {len(report.tested)} judged segments drifted; a "
        "segment is judged with the single-model rule (BH-adjusted p &lt; "
        f"{report.config.alpha}, effect floors, share {report.config.drift_share}); the fleet "
        "drifts when any segment does.</p>",
        f"<h2>Why</h2><ul>{reasons}</ul>",
        '<h2>Segments <small>(drifted first)</small></h2><table><tr><th class="l">segment</th>'
        "<th>status</th><th>rows ref</th><th>rows cur</th><th class='l'>drifted columns</th>"
        "<th class='l'>worst column</th><th>test</th><th>statistic</th><th>p adj.</th>"
        f"<th>effect</th><th class='l'>note</th></tr>{segment_rows}</table>",
    ]
    for key in report.drifted_features:
        segment = report.segment_reports.get(key)
        if segment is None:
            continue
        parts.append(
            f"<h2>Segment {html.escape(key)} {_badge(Status.DRIFT)}</h2>"
            f"<table>{_HEADER}{_rows(segment.ordered_features())}</table>"
        )
        parts.extend(_section(f) for f in segment.ordered_features() if f.drifted)
    parts.append("</body></html>")
    return "".join(parts)


@dataclass(frozen=True)
class PublishedFleetDrift:
    html: str  # where the files are (a path, or an object-store URL)
    json: str
    report_id: int


def publish_fleet_drift(
    settings: Settings, result: FleetDrift, out: Path | str | None = None
) -> PublishedFleetDrift:
    """Write ``drift.html`` and ``drift.json`` (to ``out``, default ``HOME/reports/drift-TIME``
    or the object store's reports) and insert the ``drift_reports`` row, as ``monitor model``
    does for one model."""
    from mlfactory.db import get_engine
    from mlfactory.monitoring import report_json, save_drift_report
    from mlfactory.storage import report_folder

    report = result.report
    if report is None:
        raise DataError(f"fleet {result.model} v{result.version}: no report to publish")
    default = datetime.now(UTC).strftime("drift-%Y%m%d-%H%M%S-%f")
    with report_folder(settings, out, default) as folder:
        folder.local.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, text in (
            ("drift.html", render_fleet_html(report)),
            ("drift.json", report_json(report)),
        ):
            path = folder.local / name
            staging = path.with_name(f".{name}.tmp")
            staging.write_text(text, encoding="utf-8")
            staging.replace(path)
            written[name] = str(folder.shown(path))
    report_id = save_drift_report(get_engine(settings.database_url), report)
    return PublishedFleetDrift(written["drift.html"], written["drift.json"], report_id)
