"""Monitoring: distribution-shift tests, drift reports and prediction-log windows.

The public names load with the module that defines them, on first use (pip's lazy command table,
PEP 562): ``monitor drift`` needs the tests and the report, not scikit-learn (the domain
classifier) nor the registry and the prediction log (``monitor model``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlfactory._lazy import lazy_exports

if TYPE_CHECKING:
    from mlfactory.monitoring._domain import DomainClassifierResult, domain_classifier
    from mlfactory.monitoring._drift import (
        ColumnKind,
        DriftConfig,
        DriftReport,
        FeatureDrift,
        Status,
        compare_columns,
        detect_drift,
        subsample,
    )
    from mlfactory.monitoring._model import (
        REFERENCE_SAMPLE,
        load_reference_sample,
        monitor_model,
        parse_time,
    )
    from mlfactory.monitoring._report import ReportFiles, render_html, report_json, write_report
    from mlfactory.monitoring._sources import PublishedReport, Sample, load_sample, publish_report
    from mlfactory.monitoring._stats import (
        categorical_stats,
        jensen_shannon,
        ks_pvalue,
        numeric_stats,
        psi,
        quantile_edges,
    )
    from mlfactory.monitoring._store import (
        DRIFT_REPORTS,
        create_drift_reports,
        read_drift_reports,
        save_drift_report,
    )
    from mlfactory.monitoring._windows import WindowFreq, window_drift

__all__ = [
    "DRIFT_REPORTS",
    "REFERENCE_SAMPLE",
    "ColumnKind",
    "DomainClassifierResult",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "PublishedReport",
    "ReportFiles",
    "Sample",
    "Status",
    "WindowFreq",
    "categorical_stats",
    "compare_columns",
    "create_drift_reports",
    "detect_drift",
    "domain_classifier",
    "jensen_shannon",
    "ks_pvalue",
    "load_reference_sample",
    "load_sample",
    "monitor_model",
    "numeric_stats",
    "parse_time",
    "psi",
    "publish_report",
    "quantile_edges",
    "read_drift_reports",
    "render_html",
    "report_json",
    "save_drift_report",
    "subsample",
    "window_drift",
    "write_report",
]

_MODULES: dict[str, tuple[str, ...]] = {
    "_domain": ("DomainClassifierResult", "domain_classifier"),
    "_drift": (
        "ColumnKind",
        "DriftConfig",
        "DriftReport",
        "FeatureDrift",
        "Status",
        "compare_columns",
        "detect_drift",
        "subsample",
    ),
    "_model": ("REFERENCE_SAMPLE", "load_reference_sample", "monitor_model", "parse_time"),
    "_report": ("ReportFiles", "render_html", "report_json", "write_report"),
    "_sources": ("PublishedReport", "Sample", "load_sample", "publish_report"),
    "_stats": (
        "categorical_stats",
        "jensen_shannon",
        "ks_pvalue",
        "numeric_stats",
        "psi",
        "quantile_edges",
    ),
    "_store": ("DRIFT_REPORTS", "create_drift_reports", "read_drift_reports", "save_drift_report"),
    "_windows": ("WindowFreq", "window_drift"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
