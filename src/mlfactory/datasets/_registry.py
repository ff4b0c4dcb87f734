"""Named datasets and synthetic raw files: ``load_dataset``, ``list_datasets``, ``write_synthetic``.

Allowed names are data (the ``DATASETS`` dict, the ``SyntheticName`` enum), so errors list them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

from mlfactory.datasets._adult import adult_default_dir, load_adult, synth_adult, write_adult
from mlfactory.datasets._base import Dataset, Task
from mlfactory.datasets._bundled import load_breast_cancer, load_diabetes
from mlfactory.datasets._credit import credit_default_path, load_credit, synth_credit, write_credit
from mlfactory.datasets._fires import fires_default_path, load_fires, synth_fires, write_fires
from mlfactory.datasets._stocks import load_stocks
from mlfactory.datasets._user import load_user_table
from mlfactory.exceptions import SpecError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings

__all__ = [
    "DATASETS",
    "SYNTHETIC",
    "DatasetLoader",
    "SyntheticName",
    "SyntheticWriter",
    "list_datasets",
    "load_dataset",
    "write_synthetic",
]

logger = get_logger(__name__)


@dataclass(frozen=True)
class DatasetLoader:
    """A named dataset: its loader function, task and a one-line description."""

    name: str
    load: Callable[..., Dataset]
    task: Task
    description: str

    @property
    def options(self) -> tuple[str, ...]:
        """Keyword options the loader accepts (besides ``settings``)."""
        params = inspect.signature(self.load).parameters
        return tuple(p for p in params if p != "settings")

    def __call__(self, settings: Settings | None = None, **options: Any) -> Dataset:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "(none)"
            raise SpecError(
                f"dataset {self.name!r} has no option(s) {', '.join(unknown)}; "
                f"valid options: {valid}"
            )
        return self.load(settings=settings or get_settings(), **options)


DATASETS: dict[str, DatasetLoader] = {
    loader.name: loader
    for loader in (
        DatasetLoader(
            "credit",
            load_credit,
            Task.CLASSIFICATION,
            "Give Me Some Credit (Kaggle cs-training.csv): delinquency within two years",
        ),
        DatasetLoader(
            "adult", load_adult, Task.CLASSIFICATION, "UCI Adult census: income above 50K"
        ),
        DatasetLoader("fires", load_fires, Task.REGRESSION, "UCI Forest Fires: burned area"),
        DatasetLoader(
            "stocks",
            load_stocks,
            Task.CLASSIFICATION,
            "daily stock features from the silver store: next-day direction",
        ),
        DatasetLoader(
            "breast_cancer",
            load_breast_cancer,
            Task.CLASSIFICATION,
            "scikit-learn breast cancer: benign or malignant",
        ),
        DatasetLoader(
            "diabetes", load_diabetes, Task.REGRESSION, "scikit-learn diabetes: progression"
        ),
    )
}


def list_datasets() -> list[str]:
    """Names of the registered datasets, sorted."""
    return sorted(DATASETS)


def load_dataset(
    name_or_table: str | Mapping[str, Any],
    settings: Settings | None = None,
    **options: Any,
) -> Dataset:
    """Load a registered dataset by name, or the user's table described by a dict.

    A dict is ``{"path": ..., "target": ...}`` or ``{"sql": ..., "url": ..., "target": ...}``
    (see :func:`mlfactory.datasets.load_user_table`); options then go into the dict.
    """
    if isinstance(name_or_table, Mapping):
        return load_user_table({**name_or_table, **options}, settings=settings)
    if not isinstance(name_or_table, str):
        raise SpecError(
            f"dataset must be a name or a table dict, got {type(name_or_table).__name__}"
        )
    loader = DATASETS.get(name_or_table)
    if loader is None:
        raise SpecError(
            f"unknown dataset {name_or_table!r}; valid names: {', '.join(list_datasets())} "
            "(or a table such as {'path': 'file.csv', 'target': 'column'})"
        )
    return loader(settings, **options)


class SyntheticName(StrEnum):
    """Datasets that have a synthetic raw-file writer."""

    CREDIT = "credit"
    ADULT = "adult"
    FIRES = "fires"


@dataclass(frozen=True)
class SyntheticWriter:
    """How to make and write a synthetic raw file set for one dataset."""

    synth: Callable[[int, int], pd.DataFrame]
    write: Callable[[int, Path, int], list[Path]]  # rows, out, seed -> written files
    default_out: Callable[[Settings], Path]
    file_name: str | None  # the file a folder ``out`` gets (None: ``out`` is always a folder)


def _write_credit(rows: int, out: Path, seed: int) -> list[Path]:
    return [write_credit(synth_credit(rows, seed), out)]


def _write_fires(rows: int, out: Path, seed: int) -> list[Path]:
    return [write_fires(synth_fires(rows, seed), out)]


def _write_adult(rows: int, out: Path, seed: int) -> list[Path]:
    # adult.test is half as long as adult.data, like the UCI files; a different seed stream.
    return write_adult(synth_adult(rows, seed), out, synth_adult(max(1, rows // 2), seed + 1))


SYNTHETIC: dict[SyntheticName, SyntheticWriter] = {
    SyntheticName.CREDIT: SyntheticWriter(
        synth_credit, _write_credit, credit_default_path, "cs-training.csv"
    ),
    SyntheticName.ADULT: SyntheticWriter(synth_adult, _write_adult, adult_default_dir, None),
    SyntheticName.FIRES: SyntheticWriter(
        synth_fires, _write_fires, fires_default_path, "forestfires.csv"
    ),
}


def write_synthetic(
    name: str,
    rows: int,
    out: str | Path | None = None,
    seed: int = 0,
    *,
    settings: Settings | None = None,
) -> list[Path]:
    """Write a synthetic raw file set for ``name`` in the real format, atomically.

    ``out`` defaults to where the loader looks, so loading ``name`` afterwards just works. For
    credit and fires ``out`` may be a file or an existing folder; for adult it is a folder that
    receives ``adult.data`` and ``adult.test``.
    """
    try:
        key = SyntheticName(name)
    except ValueError:
        valid = ", ".join(n.value for n in SyntheticName)
        raise SpecError(f"no synthetic writer for {name!r}; valid names: {valid}") from None
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise SpecError(f"rows must be a positive integer, got {rows!r}")
    writer = SYNTHETIC[key]
    target = Path(out) if out is not None else writer.default_out(settings or get_settings())
    if writer.file_name is not None and target.is_dir():
        target = target / writer.file_name
    if writer.file_name is None and target.is_file():
        raise SpecError(
            f"{key.value} writes adult.data and adult.test into a folder; {target} is a file"
        )
    written = writer.write(rows, target, seed)
    logger.info("wrote synthetic %s (%d rows): %s", key.value, rows, ", ".join(map(str, written)))
    return written
