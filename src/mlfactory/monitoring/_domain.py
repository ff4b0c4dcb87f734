"""Multivariate drift: can a classifier tell the reference rows from the current rows?

Per-feature tests miss changes of the joint distribution (a correlation that flips sign keeps both
marginals). A gradient-boosting classifier is trained to separate reference (0) from current (1)
rows; its cross-validated ROC AUC is about 0.5 when the samples come from one distribution. The
threshold is not a fixed number but the (1 - alpha) quantile of AUCs obtained with shuffled domain
labels (a permutation test), so it adapts to sample size and model flexibility.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger

__all__ = ["DomainClassifierResult", "domain_classifier"]

logger = get_logger(__name__)


@dataclass
class DomainClassifierResult:
    auc: float  # mean cross-validated ROC AUC with the true domain labels
    threshold: float  # (1 - alpha) quantile of the permutation AUCs
    p_value: float  # (1 + #{permutation AUC >= auc}) / (1 + permutations)
    drifted: bool
    n_per_side: int
    columns: list[str]
    permutation_aucs: list[float] = field(default_factory=list)
    min_auc: float = 0.55

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _encode(frame: pd.DataFrame, categorical: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as floats, categories as integer codes (NaN for missing); mask of categorical."""
    columns, mask = [], []
    for name in frame.columns:
        series = frame[name]
        is_cat = name in categorical or not (
            pd.api.types.is_numeric_dtype(series.dtype)
            and not pd.api.types.is_bool_dtype(series.dtype)
        )
        if is_cat:
            codes, uniques = pd.factorize(series.astype("string"), use_na_sentinel=True)
            values = codes.astype(np.float64)
            values[codes < 0] = np.nan
            is_cat = len(uniques) <= 250  # HistGradientBoosting's categorical limit
        else:
            values = pd.to_numeric(series, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        columns.append(values)
        mask.append(is_cat)
    return np.column_stack(columns), np.array(mask, dtype=bool)


def domain_classifier(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    max_rows: int = 3_000,
    folds: int = 3,
    n_permutations: int = 19,
    alpha: float = 0.05,
    min_auc: float = 0.55,
    max_iter: int = 40,
    categorical: Sequence[str] = (),
    seed: int = 0,
) -> DomainClassifierResult:
    """Cross-validated AUC of reference-vs-current, against a permutation threshold.

    Each side is capped at ``max_rows`` rows (fixed seed). Drifted when the AUC exceeds the
    (1 - alpha) quantile of ``n_permutations`` AUCs under shuffled labels **and** reaches
    ``min_auc`` (an AUC of 0.52 on 5,000 rows per side is real but not worth an alarm).
    """
    columns = list(columns) if columns is not None else list(reference.columns)
    if not columns:
        raise DataError("domain classifier: no testable column to learn from")
    rng = np.random.default_rng(seed)
    n = min(len(reference), len(current), max_rows)
    if n < 2 * folds:
        raise DataError(
            f"domain classifier: {n} rows per side; expected at least {2 * folds} ({folds} folds)"
        )
    ref = reference[columns].iloc[rng.choice(len(reference), n, replace=False)]
    cur = current[columns].iloc[rng.choice(len(current), n, replace=False)]
    X, mask = _encode(pd.concat([ref, cur], ignore_index=True), set(categorical))
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    model = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=0.1,
        max_leaf_nodes=15,
        early_stopping=False,
        categorical_features=mask if mask.any() else None,
        random_state=seed,
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)

    def auc(labels: np.ndarray) -> float:
        return float(cross_val_score(model, X, labels, cv=cv, scoring="roc_auc").mean())

    with threadpool_limits(1):  # OpenMP threads oversubscribe badly on small fits
        observed = auc(y)
        permuted = [auc(rng.permutation(y)) for _ in range(n_permutations)]
    threshold = float(np.quantile(permuted, 1 - alpha)) if permuted else 0.5
    p_value = (1 + sum(p >= observed for p in permuted)) / (1 + len(permuted))
    drifted = observed > threshold and observed >= min_auc
    logger.info(
        "domain classifier: AUC %.3f, permutation threshold %.3f (p=%.3f)",
        observed,
        threshold,
        p_value,
    )
    return DomainClassifierResult(
        auc=observed,
        threshold=threshold,
        p_value=float(p_value),
        drifted=bool(drifted),
        n_per_side=n,
        columns=columns,
        permutation_aucs=permuted,
        min_auc=min_auc,
    )
