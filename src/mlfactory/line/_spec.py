"""The line spec: one TOML file naming the factory's stages in their fixed order.

``data`` (optional) -> ``dataset`` -> ``train`` -> ``gate`` -> ``promote`` -> ``explain``
(optional) -> ``batch`` (optional) -> ``monitor`` (optional). Validated like experiment specs:
every error names the file and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from mlfactory._toml import read_toml
from mlfactory._validation import describe_validation_error
from mlfactory.exceptions import SpecError
from mlfactory.settings import Settings

__all__ = [
    "STAGES",
    "BatchStage",
    "DataStage",
    "DatasetStage",
    "ExplainStage",
    "GateRules",
    "LineSpec",
    "MonitorStage",
    "PromoteStage",
    "TrainStage",
    "line_from_dict",
    "load_line",
]

STAGES = ("data", "dataset", "train", "gate", "promote", "explain", "batch", "monitor")
USER_TABLE_KEYS = (
    "path",
    "sql",
    "url",
    "target",
    "task",
    "time_column",
    "groups",
    "numeric",
    "categorical",
    "boolean",
    "skewed",
    "drop",
    "roles",
    "horizon",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataStage(_Strict):
    """``[data]``: make the raw data: a synthetic raw file set, or prices ingested + featurized.

    ``synthetic = "credit"`` (with ``rows``, ``seed``) writes a seeded synthetic raw file where
    the dataset's loader reads it. ``ingest = "synthetic" | "yfinance"`` (with ``tickers``,
    ``start``, ``end``, ``horizon``) brings the bronze price store up to ``end`` (incremental)
    and builds the silver features the ``stocks`` dataset reads (unchanged tickers skipped).
    """

    synthetic: str | None = Field(None, description="Dataset whose synthetic raw file to write.")
    rows: int = Field(5_000, ge=10, description="Rows to write (synthetic).")
    seed: int = Field(0, description="Seed of the synthetic data.")
    ingest: Literal["synthetic", "yfinance"] | None = Field(None, description="Price source.")
    tickers: int | list[str] | None = Field(
        None, description="How many of the shipped tickers (first N), or the symbols; all if unset."
    )
    start: date = Field(date(2015, 1, 1), description="First day to ingest.")
    end: date | None = Field(None, description="Last day to ingest (default: today).")
    horizon: int = Field(1, ge=1, description="Days the feature target looks ahead.")

    @model_validator(mode="after")
    def _one_kind(self) -> DataStage:
        if (self.synthetic is None) == (self.ingest is None):
            raise ValueError("give either synthetic (a raw file set) or ingest (a price source)")
        if isinstance(self.tickers, int) and self.tickers < 1:
            raise ValueError(f"tickers must be at least 1, got {self.tickers}")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class DatasetStage(BaseModel):
    """``[dataset]``: a named dataset (``name`` + ``options``) or a user table (``path`` + ...)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(None, description="Registered dataset name (mlfactory data list).")
    options: dict[str, Any] = Field(default_factory=dict, description="Named dataset options.")

    @model_validator(mode="after")
    def _one_kind(self) -> DatasetStage:
        extra = dict(self.model_extra or {})
        unknown = sorted(set(extra) - set(USER_TABLE_KEYS))
        if unknown:
            valid = ", ".join(["name", "options", *USER_TABLE_KEYS])
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; valid keys: {valid}")
        if self.name is None and not ({"path", "sql"} & set(extra)):
            raise ValueError("give a dataset name, or a user table (path or sql, and target)")
        if self.name is not None and extra:
            raise ValueError(
                f"a named dataset takes only options; got user-table keys {', '.join(extra)}"
            )
        if self.name is None and "target" not in extra:
            raise ValueError("a user table needs target (the column to predict)")
        return self

    @property
    def table(self) -> dict[str, Any]:
        """The user table's keys (empty for a named dataset)."""
        return dict(self.model_extra or {})


class TrainStage(_Strict):
    """``[train]``: an experiment spec by path, or inline in ``[train.experiment]``."""

    spec: str | None = Field(None, description="Experiment spec TOML file (line folder first).")
    experiment: dict[str, Any] | None = Field(None, description="An inline experiment spec.")
    overrides: list[str] = Field(
        default_factory=list, description="key=value overrides of the experiment spec."
    )

    @model_validator(mode="after")
    def _one_source(self) -> TrainStage:
        if (self.spec is None) == (self.experiment is None):
            raise ValueError("give either spec (a file) or [train.experiment] (inline), not both")
        return self


class GateRules(_Strict):
    """``[gate]``: what a challenger must show to become champion."""

    primary: str | None = Field(
        None, description="Metric that must improve; default: the experiment's refit metric."
    )
    margin: float = Field(0.0, ge=0, description="Least improvement of the primary metric.")
    margin_kind: Literal["absolute", "relative"] = "absolute"
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Level of the bootstrap CI.")
    resamples: int = Field(1_000, ge=100, le=100_000, description="Paired bootstrap resamples.")
    seed: int = 0
    guards: dict[str, float] = Field(
        default_factory=dict, description="metric -> how much it may worsen (>= 0)."
    )
    floors: dict[str, float] | None = Field(
        None,
        description="metric -> minimum when there is no champion; default: primary better "
        "than chance (roc_auc 0.5, r2 0.0).",
    )
    allow_schema_change: bool = Field(
        False, description="Accept a challenger that needs inputs the champion does not take."
    )
    slices: list[str] = Field(
        default_factory=list,
        description="Columns whose slices (values, or quartiles of a number) may not regress.",
    )
    slice_tolerance: float = Field(0.02, ge=0, description="How much a slice may worsen.")
    slice_min_rows: int = Field(50, ge=10, description="Smaller slices are not judged.")
    latency_p99_ms: float | None = Field(
        None, gt=0, description="Budget of the challenger's single-row in-process p99 latency."
    )
    require_onnx: bool = Field(
        True, description="If the champion serves through ONNX, the challenger must convert too."
    )

    @model_validator(mode="after")
    def _tolerances(self) -> GateRules:
        for metric, tolerance in self.guards.items():
            if tolerance < 0:
                raise ValueError(f"guard {metric!r}: tolerance must be >= 0, got {tolerance}")
        return self


class PromoteStage(_Strict):
    """``[promote]``: the registered model and the alias a passing challenger gets."""

    model: str = Field(min_length=1, pattern=r"^[\w.\-]+$", description="Registered model name.")
    alias: str = Field("champion", pattern=r"^[\w\-]+$")
    challenger_alias: str = Field("challenger", pattern=r"^[\w\-]+$")
    onnx: bool = Field(True, description="Compile and verify ONNX when registering.")
    keep_rejected: bool = Field(
        True,
        description="Keep a rejected challenger as a version with challenger_alias; false: "
        "remove the version (its decision stays recorded).",
    )


class ExplainStage(_Strict):
    """``[explain]``: explain the champion on its held-out rows (HTML report, run artifacts)."""

    max_rows: int = Field(500, ge=10, description="Rows explained (a sample of the test set).")
    n_repeats: int = Field(5, ge=1, description="Permutation importance repeats.")
    top_k: int = Field(5, ge=1, description="Features with partial dependence plots.")
    segments: list[str] = Field(
        default_factory=list,
        description="A fleet: segments whose models get partial dependence and SHAP too "
        "(every segment gets permutation importance); 'fallback' names the fallback.",
    )


class BatchStage(_Strict):
    """``[batch]``: score a file with the champion, into a parquet folder or a SQL table."""

    input: str = Field(description="Parquet/CSV file or folder to score (line folder first).")
    output: str | None = Field(None, description="Parquet folder (replaced on each run).")
    table: str | None = Field(None, description="SQL table the scores are appended to.")
    url: str | None = Field(None, description="Database of the table (default: mlfactory's).")
    key_columns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_sink(self) -> BatchStage:
        if (self.output is None) == (self.table is None):
            raise ValueError("give either output (a parquet folder) or table (a SQL table)")
        if self.url is not None and self.table is None:
            raise ValueError("url is the database of table; give table too")
        return self


class MonitorStage(_Strict):
    """``[monitor]``: the champion's drift baseline (its reference sample vs held-out rows)."""

    baseline: bool = True


class LineSpec(_Strict):
    """One line: a name and its stages (data, batch and monitor may be left out)."""

    name: str = Field(min_length=1, pattern=r"^[\w.\-]+$", description="Line name.")
    description: str = ""
    data: DataStage | None = None
    dataset: DatasetStage
    train: TrainStage
    gate: GateRules = Field(default_factory=GateRules)
    promote: PromoteStage
    explain: ExplainStage | None = None
    batch: BatchStage | None = None
    monitor: MonitorStage | None = None

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def folder(self) -> Path:
        return self._source.parent if self._source is not None else Path.cwd()

    def path(self, text: str) -> Path:
        """A path of the spec: absolute as given, else relative to the line file's folder."""
        path = Path(text).expanduser()
        return path if path.is_absolute() else (self.folder / path).resolve()

    def stages(self) -> list[str]:
        """The stages this line has, in the factory's order."""
        required = ("dataset", "train", "gate", "promote")
        return [s for s in STAGES if s in required or getattr(self, s) is not None]


_SECTIONS: dict[str, type[BaseModel]] = {
    "": LineSpec,
    "data": DataStage,
    "dataset": DatasetStage,
    "train": TrainStage,
    "gate": GateRules,
    "promote": PromoteStage,
    "explain": ExplainStage,
    "batch": BatchStage,
    "monitor": MonitorStage,
}


def _describe(error: Any) -> str:
    return describe_validation_error(error, _SECTIONS)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``dotted.key=value`` overrides (values read as TOML literals, else as text), on a copy.

    The same rules as an experiment spec's ``--set`` (:func:`mlfactory.spec.apply_overrides`),
    without importing the modelling stack: a rerun with nothing changed stays fast.
    """
    import copy

    result = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not key.strip() or not all(parts):
            raise SpecError(f"override {item!r}: expected key=value, e.g. gate.margin=0.01")
        table = result
        for depth, part in enumerate(parts[:-1]):
            node = table.setdefault(part, {})
            if not isinstance(node, dict):
                prefix = ".".join(parts[: depth + 1])
                raise SpecError(
                    f"override {item!r}: {prefix!r} is {node!r}, not a table; "
                    f"set it as a whole instead ({prefix}={{...}})"
                )
            table = node
        try:
            value = tomllib.loads(f"value = {raw.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        table[parts[-1]] = value
    return result


def line_from_dict(
    data: dict[str, Any], *, source: Path | None = None, overrides: Sequence[str] = ()
) -> LineSpec:
    """Validate a raw line table (after ``key=value`` overrides); ``SpecError`` naming the field."""
    where = str(source) if source is not None else "line spec"
    raw = apply_overrides(dict(data), overrides)
    try:
        line = LineSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{where}: {_describe(exc.errors()[0])}") from None
    line._source = source
    return line


def load_line(path: str | Path, overrides: Sequence[str] = ()) -> LineSpec:
    """Read, override and validate a line spec TOML file."""
    path = Path(path)
    data = read_toml(path, "line spec")
    return line_from_dict(data, source=path.resolve(), overrides=overrides)


def line_reports(settings: Settings, line: str, *parts: str) -> Path | str:
    """Where a line's reports go: ``HOME/reports/line/LINE/…``, or ``STORE/reports/line/LINE/…``
    when the store is an object store (so every machine of a cluster sees them)."""
    if settings.store_is_remote:
        from mlfactory.storage import join

        return join(settings.reports_root, "line", line, *parts)
    return settings.reports_dir.joinpath("line", line, *parts)
