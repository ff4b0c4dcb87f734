"""Where the samples come from: a file (parquet, CSV) or a registered dataset; and publishing.

Kept apart from the statistics so that the engine only ever sees DataFrames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.monitoring._drift import DriftReport
from mlfactory.monitoring._report import ReportFiles, write_report
from mlfactory.settings import Settings

__all__ = ["PublishedReport", "Sample", "load_sample", "publish_report"]

logger = get_logger(__name__)


@dataclass
class Sample:
    frame: pd.DataFrame
    name: str
    target: str | None = None  # label column, when known
    time_column: str | None = None


def load_sample(source: str, settings: Settings) -> Sample:
    """A file path (``.parquet``/``.csv``) or the name of a registered dataset.

    A dataset's frame is its features plus its target (so label drift can be tested); its time
    column is kept in the frame for window tests but is not a feature.
    """
    from mlfactory._tables import TABLE_SUFFIXES, read_table_file

    path = Path(source)
    if path.suffix.lower() in TABLE_SUFFIXES or path.exists():  # missing, a folder, ...: named
        return Sample(read_table_file(path), str(path))
    from mlfactory.datasets import DATASETS, load_dataset  # scikit-learn: only for a dataset

    if source not in DATASETS:
        raise DataError(
            f"{source!r} is neither an existing file nor a dataset; datasets: "
            f"{', '.join(sorted(DATASETS))}; files: .parquet or .csv"
        )
    data = load_dataset(source, settings)
    target = str(data.y.name or "target")
    frame = pd.concat([data.X, data.y.rename(target)], axis=1)
    return Sample(frame, f"dataset {source}", target=target, time_column=data.time_column)


@dataclass(frozen=True)
class PublishedReport:
    files: ReportFiles
    report_id: int


def publish_report(
    settings: Settings, report: DriftReport, out_dir: Path | str | None = None
) -> PublishedReport:
    """Write the HTML and JSON files and insert the ``drift_reports`` row."""
    from mlfactory.db import get_engine  # SQLAlchemy: not for loading samples (monitor windows)
    from mlfactory.monitoring._store import save_drift_report
    from mlfactory.storage import report_folder  # HOME/reports or the object store

    default = datetime.now(UTC).strftime("drift-%Y%m%d-%H%M%S-%f")
    with report_folder(settings, out_dir, default) as folder:
        written = write_report(report, folder.local)
    files = ReportFiles(folder.shown(written.html), folder.shown(written.json))
    report_id = save_drift_report(get_engine(settings.database_url), report)
    logger.info("drift report %d written to %s", report_id, files.html)
    return PublishedReport(files, report_id)
