"""Drift of a fleet, segment by segment: each segment's training rows vs its own traffic.

The reference is the fleet training's ``reference_sample.parquet`` (up to 300 training rows of
every segment, with ``__segment__``); the current sample is the prediction log of the window for
the version, cut by the segment columns of the logged inputs. Each segment with enough rows on
both sides gets the same tests and decision rule as a single model (``detect_drift``); the fleet
drifts when any segment does.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mlfactory.exceptions import DataError, SpecError
from mlfactory.fleet._plan import segment_keys
from mlfactory.settings import Settings

__all__ = ["FleetDrift", "monitor_fleet"]


@dataclass
class FleetDrift:
    model: str
    version: str
    window: str
    table: (
        pd.DataFrame
    )  # segment, reference_rows, current_rows, status, share_drifted, drifted_features

    @property
    def drifted(self) -> bool:
        return bool((self.table["status"] == "drift").any())

    @property
    def drifted_segments(self) -> list[str]:
        return self.table.loc[self.table["status"] == "drift", "segment"].tolist()


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
    from mlfactory.fleet._registry import (
        ARTIFACT_DIR,
        _download,
        is_fleet_version,
        load_version_manifest,
    )
    from mlfactory.monitoring import DriftConfig, detect_drift
    from mlfactory.monitoring._model import _as_feature, parse_time
    from mlfactory.prediction_log import read_prediction_log
    from mlfactory.registry import parse_model_ref, resolve_version
    from mlfactory.tracking import open_tracking

    info = resolve_version(open_tracking(settings), parse_model_ref(reference))
    if not is_fleet_version(info):
        return None
    now = datetime.now(UTC)
    start, end = parse_time(since, now), parse_time(until, now)
    if start is not None and end is not None and start >= end:
        raise SpecError(f"window start {start.isoformat()} is not before end {end.isoformat()}")
    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-drift-"))
    try:
        manifest = load_version_manifest(settings, info, work / "manifest")
        path = _download(
            settings, f"runs:/{info.run_id}/{ARTIFACT_DIR}/reference_sample.parquet", work / "ref"
        )
        sample = pd.read_parquet(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    window = f"{start.isoformat() if start else 'start'} to {end.isoformat() if end else 'now'}"
    logged = read_prediction_log(
        get_engine(settings.database_url), info.name, since=start, until=end,
        model_version=info.version,
    )  # fmt: skip
    if logged.empty:
        raise DataError(f"no predictions logged for {info.name} v{info.version} from {window}")
    by = list(manifest["by"])
    features = [c for c in manifest["features"] if c in sample.columns and c in logged.columns]
    features = [c for c in features if c not in by]  # constant within a segment
    ref_keys = (
        sample["__segment__"].astype(str)
        if "__segment__" in sample.columns
        else segment_keys(sample, by)
    )
    cur_keys = segment_keys(logged, by)
    config = config or DriftConfig()
    rows = []
    for key in sorted(set(cur_keys) | set(ref_keys)):
        ref = sample.loc[(ref_keys == key).to_numpy(), features]
        cur_raw = logged.loc[(cur_keys == key).to_numpy(), features]
        row: dict[str, Any] = {
            "segment": key,
            "reference_rows": len(ref),
            "current_rows": len(cur_raw),
            "share_drifted": None,
            "drifted_features": [],
        }
        if len(ref) < min_rows or len(cur_raw) < min_rows:
            row["status"] = "too few rows"
        else:
            cur = pd.DataFrame({c: _as_feature(cur_raw[c], ref[c]) for c in features})
            report = detect_drift(ref, cur, features, config, names=("training", "traffic"))
            row["status"] = "drift" if report.drifted else "no drift"
            row["share_drifted"] = report.share_drifted
            row["drifted_features"] = report.drifted_features
        rows.append(row)
    return FleetDrift(info.name, info.version, window, pd.DataFrame(rows))
