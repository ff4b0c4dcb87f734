"""Drift of a registered model in production: its training sample vs its prediction log.

Reference = the ``reference_sample.parquet`` logged next to the model by ``mlfactory train`` (up to
5,000 training rows with the target); current = the prediction-log rows of a time window, restricted
to the features the model takes. Prediction drift compares the model's predictions on the reference
sample with the predictions it logged. This module only does the I/O; the tests are in ``_drift``.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from mlfactory.db import get_engine
from mlfactory.exceptions import DataError, SpecError
from mlfactory.logs import get_logger
from mlfactory.monitoring._drift import DriftConfig, DriftReport, ProgressCallback, detect_drift
from mlfactory.prediction_log import read_prediction_log
from mlfactory.settings import Settings

__all__ = ["REFERENCE_SAMPLE", "load_reference_sample", "monitor_model", "parse_time"]

logger = get_logger(__name__)
REFERENCE_SAMPLE = "reference_sample.parquet"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str | datetime | None, now: datetime | None = None) -> datetime | None:
    """``24h``/``7d``/``30m``/``2w`` (that long before ``now``) or ISO date/time (UTC if naive)."""
    if text is None or isinstance(text, datetime):
        if isinstance(text, datetime) and text.tzinfo is None:
            return text.replace(tzinfo=UTC)
        return text
    now = now or datetime.now(UTC)
    match = _DURATION.match(text)
    if match:
        return now - timedelta(**{_UNITS[match[2]]: float(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SpecError(
            f"time {text!r}: expected a duration such as 24h, 7d, 30m, 2w or an ISO date/time "
            "such as 2026-01-31 or 2026-01-31T12:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def load_reference_sample(settings: Settings, run_id: str) -> pd.DataFrame:
    """Download and read the reference sample logged with run ``run_id``."""
    import mlflow

    from mlfactory.tracking import open_tracking, tracking_uri

    open_tracking(settings)
    with tempfile.TemporaryDirectory(prefix="mlfactory-reference-") as folder:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=REFERENCE_SAMPLE,
                tracking_uri=tracking_uri(settings),
                dst_path=folder,
            )
        except Exception as exc:  # MLflow raises several types for a missing artifact
            raise DataError(
                f"run {run_id} has no {REFERENCE_SAMPLE} artifact (models trained by "
                f"mlfactory train log one): {str(exc).splitlines()[0]}"
            ) from exc
        return pd.read_parquet(Path(path))


def _as_feature(current: pd.Series, reference: pd.Series) -> pd.Series:
    """Logged JSON values typed like the reference column (numbers stay numbers)."""
    if pd.api.types.is_numeric_dtype(reference.dtype) and not pd.api.types.is_bool_dtype(
        reference.dtype
    ):
        return pd.to_numeric(current, errors="coerce")
    return current


def monitor_model(
    settings: Settings,
    reference: str,
    since: str | datetime | None = "24h",
    until: str | datetime | None = None,
    config: DriftConfig | None = None,
    *,
    multivariate: bool = False,
    progress: ProgressCallback | None = None,
    allow_unverified: bool = False,
) -> DriftReport:
    """Drift report of model ``NAME[@alias|/version]`` over the prediction log window.

    The model is loaded through the verified loader; ``allow_unverified`` admits a version with
    no recorded SHA-256 (warned).
    """
    from mlfactory.registry import load_model

    now = datetime.now(UTC)
    start, end = parse_time(since, now), parse_time(until, now)
    if start is not None and end is not None and start >= end:
        raise SpecError(f"window start {start.isoformat()} is not before end {end.isoformat()}")
    loaded = load_model(settings, reference, allow_unverified=allow_unverified)
    sample = load_reference_sample(settings, loaded.info.run_id)
    features = loaded.feature_names or list(sample.columns[:-1])
    absent = [c for c in features if c not in sample.columns]
    if absent:
        raise DataError(f"reference sample of {loaded.ref} lacks feature(s) {', '.join(absent)}")
    logged = read_prediction_log(
        get_engine(settings.database_url),
        loaded.ref.name,
        since=start,
        until=end,
        model_version=loaded.info.version,
    )
    window = f"{start.isoformat() if start else 'start'} to {end.isoformat() if end else 'now'}"
    if logged.empty:
        raise DataError(
            f"no predictions logged for {loaded.ref} (version {loaded.info.version}) from {window}"
        )
    missing = [c for c in features if c not in logged.columns]
    if missing:
        raise DataError(
            f"prediction log of {loaded.ref} lacks input(s) {', '.join(missing)}; "
            f"logged inputs: {', '.join(c for c in logged.columns if c not in _META)}"
        )
    current = pd.DataFrame({c: _as_feature(logged[c], sample[c]) for c in features})
    reference_predictions = pd.DataFrame({"prediction": loaded.model.predict(sample[features])})
    current_predictions = pd.DataFrame({"prediction": logged["prediction"].to_numpy()})
    if loaded.is_classifier:
        reference_predictions["prediction"] = reference_predictions["prediction"].astype(str)
        current_predictions["prediction"] = current_predictions["prediction"].astype(str)
        probabilities = _logged_probabilities(settings, loaded.ref.name, loaded.info.version,
                                              start, end)  # fmt: skip
        if probabilities is not None and hasattr(loaded.model, "predict_proba"):
            scored = loaded.model.predict_proba(sample[features])
            # binary: the positive class says it all; multiclass: every class
            classes = loaded.classes[-1:] if len(loaded.classes) == 2 else loaded.classes
            for cls in classes:
                column = f"probability[{cls}]"
                if str(cls) in probabilities.columns:
                    index = loaded.classes.index(cls)
                    reference_predictions[column] = scored[:, index]
                    current_predictions[column] = pd.to_numeric(
                        probabilities[str(cls)], errors="coerce"
                    ).to_numpy()
    else:
        current_predictions["prediction"] = pd.to_numeric(
            current_predictions["prediction"], errors="coerce"
        )
    report = detect_drift(
        sample[features],
        current,
        features,
        config,
        reference_predictions=reference_predictions,
        current_predictions=current_predictions,
        multivariate=multivariate,
        names=(f"{loaded.ref} training sample (run {loaded.info.run_id})", "prediction log"),
        progress=progress,
    )
    report.model = f"{loaded.ref.name}/{loaded.info.version}"
    report.window_start, report.window_end = start, end or now
    return report


_META = ("request_id", "model_version", "received_at", "row_index", "prediction")


def _logged_probabilities(
    settings: Settings,
    name: str,
    version: str,
    since: datetime | None,
    until: datetime | None,
) -> pd.DataFrame | None:
    """Logged class probabilities of the window (rows in log order), or None when absent."""
    from mlfactory.prediction_log import read_logged_probabilities

    engine = get_engine(settings.database_url)
    return read_logged_probabilities(engine, name, version, since, until)
