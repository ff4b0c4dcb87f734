"""Per-feature drift between a reference and a current sample, with one decision rule.

Numeric columns get the two-sample Kolmogorov-Smirnov test, categorical columns the chi-square test
of homogeneity on the 2 x k table of counts. p-values are corrected across features with
Benjamini-Hochberg. A feature is **drifted** when

    p_adjusted < alpha  AND  effect >= min_effect

where the effect is the Wasserstein distance in reference standard deviations (numeric; a mean
shift of d sd gives d) or the total variation distance of category shares (categorical; the share
of rows that changed category). The p-value alone decides on small samples (any difference it can
detect is larger than the effect floor); the effect floor only bites on huge samples, where every
p-value is tiny and a difference of 1% of a standard deviation is not worth an alarm. The floors
(0.025 sd, 0.01 of rows) sit below the smallest shift we promise to catch (0.05 sd at 1M rows) and
far above the sampling noise of a clean column at that size (~0.002 sd).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from mlfactory.exceptions import DataError, SpecError
from mlfactory.logs import get_logger
from mlfactory.monitoring._stats import (
    bh_adjust,
    categorical_stats,
    numeric_stats,
    sorted_quantiles,
)

__all__ = [
    "ColumnKind",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "Status",
    "compare_columns",
    "detect_drift",
    "subsample",
]

logger = get_logger(__name__)

ProgressCallback = Callable[[str], None]
_PLOT_BINS = 30
_ECDF_POINTS = 101
_TOP_CATEGORIES = 12


class Status(StrEnum):
    DRIFT = "drift"
    OK = "ok"
    NOT_TESTABLE = "not testable"


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the decision rule (see the module docstring and docs/monitoring.md)."""

    alpha: float = 0.05  # on Benjamini-Hochberg adjusted p-values
    min_effect_numeric: float = 0.025  # Wasserstein distance in reference standard deviations
    min_effect_categorical: float = 0.01  # total variation distance of category shares
    drift_share: float = 0.25  # dataset drifts when at least this share of features drifts
    key_features: tuple[str, ...] = ()  # ... or when any of these drifts
    min_rows: int = 30  # non-null values needed in each sample to test a column
    bins: int = 10  # reference-quantile bins for PSI and Jensen-Shannon
    sample: int | None = None  # subsample each side to at most this many rows
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise SpecError(f"alpha={self.alpha}: expected a number between 0 and 1")
        if not 0 < self.drift_share <= 1:
            raise SpecError(f"drift_share={self.drift_share}: expected a share in (0, 1]")
        if self.sample is not None and self.sample < 1:
            raise SpecError(f"sample={self.sample}: expected a positive number of rows")
        if self.bins < 2:
            raise SpecError(f"bins={self.bins}: expected at least 2 bins")


@dataclass
class FeatureDrift:
    """The verdict on one column, with its p-value and its effect size side by side."""

    column: str
    kind: str
    status: str
    reason: str = ""
    test: str = ""  # "ks" or "chi2"
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect: float | None = None  # the effect the rule uses
    effect_name: str = ""  # "wasserstein_sd" or "tvd"
    psi: float | None = None
    js_distance: float | None = None
    n_reference: int = 0
    n_current: int = 0
    null_share_reference: float = 0.0
    null_share_current: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)  # small plot data (no raw rows)

    @property
    def drifted(self) -> bool:
        return self.status == Status.DRIFT

    @property
    def testable(self) -> bool:
        return self.status != Status.NOT_TESTABLE

    def to_dict(self, profile: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not profile:
            data.pop("profile")
        return data


@dataclass
class DriftReport:
    """Every column's verdict, the dataset verdict and where the samples came from."""

    features: list[FeatureDrift]
    config: DriftConfig
    reference: str = "reference"
    current: str = "current"
    n_reference: int = 0
    n_current: int = 0
    model: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    predictions: list[FeatureDrift] = field(default_factory=list)
    labels: list[FeatureDrift] = field(default_factory=list)
    multivariate: Any = None  # DomainClassifierResult when it was run
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tested(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.testable]

    @property
    def drifted_features(self) -> list[str]:
        return [f.column for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        tested = self.tested
        return len(self.drifted_features) / len(tested) if tested else 0.0

    @property
    def reasons(self) -> list[str]:
        """Why the dataset is called drifted (empty when it is not)."""
        found = []
        tested = self.tested
        if tested and self.share_drifted >= self.config.drift_share:
            found.append(
                f"{len(self.drifted_features)} of {len(tested)} features drifted "
                f"(share {self.share_drifted:.2f} >= {self.config.drift_share})"
            )
        keys = [c for c in self.config.key_features if c in self.drifted_features]
        if keys:
            found.append(f"key feature(s) drifted: {', '.join(keys)}")
        if self.multivariate is not None and self.multivariate.drifted:
            found.append(
                f"domain classifier separates the samples (AUC {self.multivariate.auc:.3f} > "
                f"permutation threshold {self.multivariate.threshold:.3f})"
            )
        if any(p.drifted for p in self.predictions):
            found.append("predictions drifted")
        if any(p.drifted for p in self.labels):
            found.append("labels drifted")
        return found

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)

    @property
    def untested(self) -> str | None:
        """Why no verdict could be reached: every feature was untestable (then "no drift" would
        only mean "not looked at"); ``None`` when at least one feature was tested."""
        if self.tested or not self.features or self.drifted:
            return None
        shown = "; ".join(f"{f.column}: {f.reason}" for f in self.features[:3])
        more = f"; and {len(self.features) - 3} more" if len(self.features) > 3 else ""
        return f"no column could be tested ({len(self.features)}): {shown}{more}"

    def ordered_features(self) -> list[FeatureDrift]:
        """Drifted first (largest effect first), then clean, then not testable."""
        rank = {Status.DRIFT: 0, Status.OK: 1, Status.NOT_TESTABLE: 2}
        return sorted(self.features, key=lambda f: (rank[Status(f.status)], -(f.effect or 0.0)))

    def to_dict(self, profile: bool = False) -> dict[str, Any]:
        """A JSON-able document (no raw rows)."""
        return {
            "created_at": self.created_at.isoformat(),
            "reference": self.reference,
            "current": self.current,
            "model": self.model,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drifted": self.drifted,
            "reasons": self.reasons,
            "share_drifted": self.share_drifted,
            "n_features": len(self.features),
            "n_tested": len(self.tested),
            "drifted_features": self.drifted_features,
            "config": asdict(self.config),
            "features": [f.to_dict(profile) for f in self.ordered_features()],
            "predictions": [f.to_dict(profile) for f in self.predictions],
            "labels": [f.to_dict(profile) for f in self.labels],
            "multivariate": None if self.multivariate is None else self.multivariate.to_dict(),
        }


def subsample(frame: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows of ``frame``, drawn without replacement with a fixed seed."""
    if n is None or len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed)


def column_kind(series: pd.Series) -> ColumnKind | None:
    """Numeric for numbers, categorical for strings/categories/booleans, None otherwise."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnKind.CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype):
        return ColumnKind.NUMERIC
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return None
    return ColumnKind.CATEGORICAL


def _looks_like_labels(series: pd.Series, max_classes: int = 50) -> bool:
    """Class labels: non-float values with few distinct values (tested as categories)."""
    if pd.api.types.is_float_dtype(series.dtype):
        return False
    return series.nunique(dropna=True) <= max_classes


def _numeric_values(series: pd.Series) -> np.ndarray:
    """Finite values as float64 (nulls, NaN and infinities dropped)."""
    if series.dtype != np.float64:
        series = pd.to_numeric(series, errors="coerce")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def _not_testable(column: str, kind: str, reason: str, **counts: Any) -> FeatureDrift:
    return FeatureDrift(
        column=column, kind=kind, status=Status.NOT_TESTABLE, reason=reason, **counts
    )


def _numeric_profile(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    low = min(ref[int(0.005 * (ref.size - 1))], cur[int(0.005 * (cur.size - 1))])
    high = max(ref[int(0.995 * (ref.size - 1))], cur[int(0.995 * (cur.size - 1))])
    if not high > low:
        low, high = min(ref[0], cur[0]), max(ref[-1], cur[-1])
    if not high > low:
        high = low + 1.0
    edges = np.linspace(low, high, _PLOT_BINS + 1)

    def shares(values: np.ndarray) -> list[float]:
        cuts = np.searchsorted(values, edges, side="left")
        return (np.diff(cuts) / values.size).tolist()

    levels = np.linspace(0.0, 1.0, _ECDF_POINTS)
    return {
        "edges": edges.tolist(),
        "reference": shares(ref),
        "current": shares(cur),
        "levels": levels.tolist(),
        "reference_quantiles": sorted_quantiles(ref, levels).tolist(),
        "current_quantiles": sorted_quantiles(cur, levels).tolist(),
    }


def _text_among_numbers(series: pd.Series) -> str | None:
    """How many values of a column tested as numbers are text that is not a number, with one
    example (``None`` when every value is a number or null)."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return None
    text = series.notna() & pd.to_numeric(series, errors="coerce").isna()
    count = int(text.sum())
    if count == 0:
        return None
    return f"{count} of {len(series)} values, e.g. {str(series[text].iloc[0])[:40]!r}"


def _test_numeric(
    column: str, ref_raw: pd.Series, cur_raw: pd.Series, config: DriftConfig
) -> FeatureDrift:
    ref, cur = np.sort(_numeric_values(ref_raw)), np.sort(_numeric_values(cur_raw))
    counts = {
        "n_reference": int(ref.size),
        "n_current": int(cur.size),
        "null_share_reference": 1 - ref.size / len(ref_raw) if len(ref_raw) else 1.0,
        "null_share_current": 1 - cur.size / len(cur_raw) if len(cur_raw) else 1.0,
    }
    kind = ColumnKind.NUMERIC
    for side, raw in (("reference", ref_raw), ("current", cur_raw)):
        text = _text_among_numbers(raw)
        if text is not None:  # a changed type, not missing values: never tested on the rest
            return _not_testable(
                column, kind, f"the {side} sample holds text, not numbers ({text})", **counts
            )
    if ref.size == 0 or cur.size == 0:
        side = "reference" if ref.size == 0 else "current"
        return _not_testable(column, kind, f"no non-null values in the {side} sample", **counts)
    if min(ref.size, cur.size) < config.min_rows:
        return _not_testable(
            column, kind, f"fewer than {config.min_rows} non-null values in a sample", **counts
        )
    if ref[0] == ref[-1] and cur[0] == cur[-1] and ref[0] == cur[0]:
        return _not_testable(column, kind, f"constant ({ref[0]:g}) in both samples", **counts)
    result = numeric_stats(ref, cur, bins=config.bins)
    return FeatureDrift(
        column=column,
        kind=kind,
        status=Status.OK,
        test="ks",
        statistic=result.ks_statistic,
        p_value=result.p_value,
        effect=result.wasserstein_norm,
        effect_name="wasserstein_sd",
        psi=result.psi,
        js_distance=result.js_distance,
        details={
            "wasserstein": result.wasserstein,
            "scale": result.scale,
            "mean_reference": result.mean_reference,
            "mean_current": result.mean_current,
            "std_reference": result.std_reference,
            "std_current": result.std_current,
        },
        profile=_numeric_profile(ref, cur),
        **counts,
    )


def _category_counts(series: pd.Series) -> dict[Any, int]:
    return {k: int(v) for k, v in series.value_counts(dropna=True, sort=False).items() if v > 0}


def _test_categorical(
    column: str, ref_raw: pd.Series, cur_raw: pd.Series, config: DriftConfig
) -> FeatureDrift:
    ref_counts, cur_counts = _category_counts(ref_raw), _category_counts(cur_raw)
    n_ref, n_cur = sum(ref_counts.values()), sum(cur_counts.values())
    counts = {
        "n_reference": n_ref,
        "n_current": n_cur,
        "null_share_reference": 1 - n_ref / len(ref_raw) if len(ref_raw) else 1.0,
        "null_share_current": 1 - n_cur / len(cur_raw) if len(cur_raw) else 1.0,
    }
    kind = ColumnKind.CATEGORICAL
    if n_ref == 0 or n_cur == 0:
        side = "reference" if n_ref == 0 else "current"
        return _not_testable(column, kind, f"no non-null values in the {side} sample", **counts)
    if min(n_ref, n_cur) < config.min_rows:
        return _not_testable(
            column, kind, f"fewer than {config.min_rows} non-null values in a sample", **counts
        )
    if len(set(ref_counts) | set(cur_counts)) < 2:
        only = next(iter(ref_counts))
        return _not_testable(column, kind, f"constant ({only}) in both samples", **counts)
    result = categorical_stats(ref_counts, cur_counts)
    ref_share = np.array(result.reference_counts) / n_ref
    cur_share = np.array(result.current_counts) / n_cur
    order = np.argsort(-(ref_share + cur_share), kind="stable")[:_TOP_CATEGORIES]
    profile = {
        "categories": [result.categories[i] for i in order],
        "reference": ref_share[order].tolist(),
        "current": cur_share[order].tolist(),
    }
    return FeatureDrift(
        column=column,
        kind=kind,
        status=Status.OK,
        test="chi2",
        statistic=result.chi2,
        p_value=result.p_value,
        effect=result.tvd,
        effect_name="tvd",
        psi=result.psi,
        js_distance=result.js_distance,
        details={
            "dof": result.dof,
            "categories": result.categories,
            "reference_counts": result.reference_counts,
            "current_counts": result.current_counts,
            "unseen_categories": result.unseen,
        },
        profile=profile,
        **counts,
    )


def _test_column(
    column: str,
    reference: pd.Series,
    current: pd.Series,
    config: DriftConfig,
    kind: ColumnKind | None,
) -> FeatureDrift:
    if kind is None:
        return _not_testable(column, "other", f"unsupported dtype {reference.dtype}")
    if kind == ColumnKind.NUMERIC:
        return _test_numeric(column, reference, current, config)
    return _test_categorical(column, reference, current, config)


def _decide(results: list[FeatureDrift], config: DriftConfig) -> None:
    """Benjamini-Hochberg across the testable results, then the rule, in place."""
    tested = [r for r in results if r.testable and r.p_value is not None]
    if not tested:
        return
    adjusted = bh_adjust([r.p_value for r in tested])
    for result, p_adj in zip(tested, adjusted, strict=True):
        result.p_adjusted = float(p_adj)
        floor = (
            config.min_effect_numeric
            if result.kind == ColumnKind.NUMERIC
            else config.min_effect_categorical
        )
        significant = result.p_adjusted < config.alpha
        large = (result.effect or 0.0) >= floor
        result.status = Status.DRIFT if significant and large else Status.OK
        if significant and not large:
            result.reason = f"significant but effect {result.effect:.4f} < {floor} (trivial)"


def compare_columns(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
    *,
    categorical: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    max_workers: int | None = None,
) -> list[FeatureDrift]:
    """Test every column (in threads: numpy's sorts release the GIL) and apply the rule.

    ``columns`` defaults to the columns both frames share; ``categorical`` forces columns to be
    treated as categories (e.g. integer codes). Benjamini-Hochberg runs across these columns.
    """
    config = config or DriftConfig()
    columns = list(columns) if columns is not None else shared_columns(reference, current)
    missing = {
        side: [c for c in columns if c not in frame.columns]
        for side, frame in (("reference", reference), ("current", current))
    }
    for side, absent in missing.items():
        if absent:
            frame = reference if side == "reference" else current
            raise DataError(
                f"column(s) {', '.join(map(str, absent))} not in the {side} sample; "
                f"its columns are: {', '.join(map(str, frame.columns))}"
            )
    forced = set(categorical)
    kinds = {
        c: ColumnKind.CATEGORICAL if c in forced else column_kind(reference[c]) for c in columns
    }
    workers = max_workers or min(4, os.cpu_count() or 1)

    def run(column: str) -> FeatureDrift:
        result = _test_column(column, reference[column], current[column], config, kinds[column])
        if progress is not None:
            progress(column)
        return result

    if workers > 1 and len(columns) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(run, columns))
    else:
        results = [run(c) for c in columns]
    _decide(results, config)
    return results


def _prediction_frame(predictions: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """A Series becomes the column ``prediction``; a frame (e.g. one column per class
    probability) is tested column by column."""
    if isinstance(predictions, pd.Series):
        return predictions.rename("prediction").reset_index(drop=True).to_frame()
    return predictions.reset_index(drop=True)


def shared_columns(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Columns of the reference that the current sample also has, in reference order."""
    shared = [c for c in reference.columns if c in set(current.columns)]
    if not shared:
        raise DataError(
            "the reference and current samples share no column; reference has "
            f"{', '.join(map(str, reference.columns))}; current has "
            f"{', '.join(map(str, current.columns))}"
        )
    return shared


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
    *,
    categorical: Sequence[str] = (),
    target: str | None = None,
    reference_predictions: pd.Series | pd.DataFrame | None = None,
    current_predictions: pd.Series | pd.DataFrame | None = None,
    multivariate: bool = False,
    names: tuple[str, str] = ("reference", "current"),
    progress: ProgressCallback | None = None,
) -> DriftReport:
    """Feature drift (+ label drift on ``target``, prediction drift, domain classifier).

    The target column, when given and present in both samples, is tested on its own (label
    drift) and left out of the features. Predictions are tested when both are given: a Series
    (labels or values) or a frame with one column per output (e.g. class probabilities), the
    predictions' p-values corrected among themselves.
    """
    config = config or DriftConfig()
    if len(reference) == 0 or len(current) == 0:
        side = names[0] if len(reference) == 0 else names[1]
        raise DataError(f"the {side} sample has no rows; expected at least {config.min_rows}")
    n_reference, n_current = len(reference), len(current)
    reference = subsample(reference, config.sample, config.seed)
    current = subsample(current, config.sample, config.seed + 1)
    if columns is None:
        columns = [c for c in shared_columns(reference, current) if c != target]
    features = compare_columns(
        reference, current, columns, config, categorical=categorical, progress=progress
    )
    labels: list[FeatureDrift] = []
    if target is not None and target in reference.columns and target in current.columns:
        as_labels = [target] if _looks_like_labels(reference[target]) else []
        labels = compare_columns(
            reference, current, [target], config, categorical=as_labels, max_workers=1
        )
    predictions: list[FeatureDrift] = []
    if reference_predictions is not None and current_predictions is not None:
        ref_pred = _prediction_frame(reference_predictions)
        cur_pred = _prediction_frame(current_predictions)
        predictions = compare_columns(
            ref_pred,
            cur_pred,
            list(ref_pred.columns),
            config,
            categorical=[c for c in ref_pred.columns if _looks_like_labels(ref_pred[c])],
            max_workers=1,
        )
    domain = None
    if multivariate:
        from mlfactory.monitoring._domain import domain_classifier

        usable = [f.column for f in features if f.testable]
        domain = domain_classifier(
            reference, current, usable, alpha=config.alpha, seed=config.seed,
            categorical=categorical,
        )  # fmt: skip
    report = DriftReport(
        features=features,
        config=config,
        reference=names[0],
        current=names[1],
        n_reference=n_reference,
        n_current=n_current,
        predictions=predictions,
        labels=labels,
        multivariate=domain,
    )
    logger.info(
        "drift: %d of %d tested features drifted; dataset %s",
        len(report.drifted_features),
        len(report.tested),
        "DRIFTED" if report.drifted else "stable",
    )
    return report
