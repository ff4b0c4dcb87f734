"""Opening a registered fleet version for reading: the shared preamble of explaining and
monitoring a fleet (the version resolved, its manifest verified, run artifacts read, its model
files loadable through the trusted loader), in a temporary folder removed on exit."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlfactory.fleet._plan import FALLBACK_KEY
from mlfactory.settings import Settings

__all__ = ["OpenedFleet", "open_fleet"]


@dataclass
class OpenedFleet:
    """A fleet version: its registry info, verified manifest, the run artifacts asked for (by
    file name, read as DataFrames) and a loader of its segment models (``files.load``)."""

    info: Any  # VersionInfo
    manifest: dict[str, Any]
    frames: dict[str, pd.DataFrame]
    files: Any  # fleet._registry.ModelFiles

    @property
    def label(self) -> str:
        return f"fleet {self.info.name} v{self.info.version}"

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every segment model's manifest entry, and the fallback's under ``FALLBACK_KEY``."""
        entries = dict(self.manifest["segments"])
        if self.manifest.get("fallback"):
            entries[FALLBACK_KEY] = self.manifest["fallback"]
        return entries

    def load(self, key: str) -> Any:
        """The model of segment ``key`` (or the fallback), verified by its SHA-256."""
        return self.files.load(key, self.entries()[key], self.label)


@contextmanager
def open_fleet(
    settings: Settings, reference: str, artifacts: Sequence[str] = (), *, read_only: bool = False
) -> Iterator[OpenedFleet | None]:
    """Open fleet ``reference`` (``NAME``, ``NAME@alias``, ``NAME/version``); ``None`` when it
    names a single model. ``artifacts``: files of the training run's ``fleet/`` folder to read
    (``heldout.parquet``, ``reference_sample.parquet``)."""
    from mlfactory.fleet._registry import (
        ARTIFACT_DIR,
        ModelFiles,
        _download,
        is_fleet_version,
        load_version_manifest,
    )
    from mlfactory.registry import parse_model_ref, resolve_version
    from mlfactory.tracking import open_tracking

    info = resolve_version(open_tracking(settings, read_only=read_only), parse_model_ref(reference))
    if not is_fleet_version(info):
        yield None
        return
    work = Path(tempfile.mkdtemp(prefix="mlfactory-fleet-"))
    try:
        manifest = load_version_manifest(settings, info, work / "manifest")
        frames = {
            name: pd.read_parquet(
                _download(
                    settings, f"runs:/{info.run_id}/{ARTIFACT_DIR}/{name}", work / "rows" / name
                )
            )
            for name in artifacts
        }
        yield OpenedFleet(info, manifest, frames, ModelFiles(settings, work / "files"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
