"""Monitoring: distribution-shift tests, drift reports and prediction-log windows."""

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
