"""The promotion gate: promote only on evidence.

Challenger and champion are scored on the SAME held-out rows (the challenger's test split,
re-scored through the champion's pipeline), pinned by a SHA-256 of those rows. Rules:

* ``schema``: the challenger takes no input the champion does not (unless allowed);
* ``primary``: the paired bootstrap CI of (challenger - champion) on the primary metric lies
  above the margin (lower bound > margin: a tie does not pass);
* ``guard``: each guard metric may not worsen by more than its tolerance;
* ``slice``: on each slice of the named columns the primary metric may not worsen beyond a
  tolerance;
* ``onnx``: if the champion serves through a verified ONNX graph, the challenger's must verify;
* ``latency``: the challenger's single-row in-process p99 latency within a budget (if set);
* ``floor``: with no champion, each floor metric must reach its minimum.

Every rule's values, the CI, pass/fail and the reason in words make the decision record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn import metrics as skm

from mlfactory.db import ensure_schema
from mlfactory.db._tables import PROMOTION_DECISIONS
from mlfactory.exceptions import SpecError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mlfactory.line._spec import GateRules
    from mlfactory.registry import InputColumn, LoadedModel

__all__ = [
    "GATE_METRICS",
    "Decision",
    "RuleResult",
    "check_metric",
    "evaluate_gate",
    "heldout_sha256",
    "read_decisions",
    "save_decision",
]

# name -> (needs probabilities, function of (y, output)); every metric: higher is better
Metric = Callable[[np.ndarray, np.ndarray], float]


def _proba_pos(p: np.ndarray) -> np.ndarray:
    return p[:, 1] if p.ndim == 2 else p


GATE_METRICS: dict[str, tuple[str, Metric]] = {
    "roc_auc": ("proba", lambda y, p: skm.roc_auc_score(y, _proba_pos(p))),
    "average_precision": ("proba", lambda y, p: skm.average_precision_score(y, _proba_pos(p))),
    "neg_log_loss": ("proba", lambda y, p: -skm.log_loss(y, p)),  # labels: see _func
    "neg_brier_score": ("proba", lambda y, p: -skm.brier_score_loss(y, _proba_pos(p))),
    "accuracy": ("pred", lambda y, p: float(np.mean(y == p))),
    "balanced_accuracy": ("pred", skm.balanced_accuracy_score),
    "f1": ("pred", lambda y, p: skm.f1_score(y, p, zero_division=0)),
    "precision": ("pred", lambda y, p: skm.precision_score(y, p, zero_division=0)),
    "recall": ("pred", lambda y, p: skm.recall_score(y, p, zero_division=0)),
    "r2": ("pred", skm.r2_score),
    "neg_mean_squared_error": ("pred", lambda y, p: -skm.mean_squared_error(y, p)),
    "neg_root_mean_squared_error": (
        "pred",
        lambda y, p: -float(np.sqrt(skm.mean_squared_error(y, p))),
    ),
    "neg_mean_absolute_error": ("pred", lambda y, p: -skm.mean_absolute_error(y, p)),
}
CHANCE = {"roc_auc": 0.5, "r2": 0.0}
BINARY_ONLY = frozenset(
    {"roc_auc", "average_precision", "neg_log_loss", "neg_brier_score", "f1", "precision", "recall"}
)


def check_metric(name: str, field_name: str) -> None:
    if name not in GATE_METRICS:
        raise SpecError(
            f"field {field_name!r}: the gate cannot score {name!r}; valid metrics: "
            f"{', '.join(GATE_METRICS)}"
        )


@dataclass
class RuleResult:
    rule: str  # schema | primary | guard | floor
    metric: str | None
    passed: bool
    reason: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Decision:
    model: str
    version: str
    champion_version: str | None
    passed: bool
    reason: str
    heldout_sha256: str
    heldout_rows: int
    rules: list[RuleResult]
    forced: bool = False
    force_reason: str | None = None
    id: int | None = None

    def tags(self) -> dict[str, str]:
        """Version tags of the decision (``gate.*``)."""
        tags = {
            "gate.passed": str(self.passed).lower(),
            "gate.forced": str(self.forced).lower(),
            "gate.reason": self.reason[:4_000],
            "gate.heldout_sha256": self.heldout_sha256,
            "gate.heldout_rows": str(self.heldout_rows),
            "gate.champion_version": self.champion_version or "none",
        }
        if self.id is not None:
            tags["gate.decision_id"] = str(self.id)
        if self.force_reason:
            tags["gate.force_reason"] = self.force_reason[:4_000]
        for rule in self.rules:
            name = f"gate.{rule.rule}" + (f".{rule.metric}" if rule.metric else "")
            tags[name] = ("pass: " if rule.passed else "fail: ") + rule.reason[:500]
        return tags


def heldout_sha256(X: pd.DataFrame, y: pd.Series) -> str:
    """SHA-256 of the held-out rows (values and column names, in order)."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(y, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _outputs(loaded: LoadedModel, X: pd.DataFrame, kind: str) -> np.ndarray:
    columns = loaded.feature_names or list(X.columns)
    frame = X[columns]
    if kind == "proba":
        return np.asarray(loaded.model.predict_proba(frame))
    return np.asarray(loaded.model.predict(frame))


def _fast_auc(y: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """ROC AUC of every bootstrap resample at once (rank formula, ties averaged)."""
    from scipy.stats import rankdata

    ys, ss = y[idx], scores[idx]
    ranks = rankdata(ss, axis=1)
    pos = ys.sum(axis=1)
    neg = ys.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * ys).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


def _func(metric: str, classes: list[Any]) -> Metric:
    """The metric's function; log loss knows every class even when a resample lacks one."""
    if metric == "neg_log_loss" and classes:
        return lambda y, p: -skm.log_loss(y, p, labels=classes)
    return GATE_METRICS[metric][1]


def _resampled(
    metric: str, y: np.ndarray, out: np.ndarray, idx: np.ndarray, classes: list[Any]
) -> np.ndarray:
    if metric == "roc_auc":
        positive = (y == np.unique(y)[-1]).astype(int)  # as roc_auc_score: the greater label
        return _fast_auc(positive, _proba_pos(out), idx)
    if metric == "accuracy":
        return (y[idx] == out[idx]).mean(axis=1)
    func = _func(metric, classes)
    values = np.empty(len(idx))
    for row, sample in enumerate(idx):
        try:
            values[row] = func(y[sample], out[sample])
        except ValueError:  # one class in the resample
            values[row] = np.nan
    return values


def _fmt(value: float) -> str:
    return f"{value:+.4f}"


def _schema_rule(
    challenger: list[InputColumn], champion: list[InputColumn], allowed: bool
) -> RuleResult:
    known = {c.name: c.type for c in champion}
    missing = [c.name for c in challenger if c.required and c.name not in known]
    retyped = [
        f"{c.name} ({known[c.name]} -> {c.type})"
        for c in challenger
        if c.name in known and c.type != known[c.name]
    ]
    values = {"new_required_inputs": missing, "changed_types": retyped}
    if not missing and not retyped:
        return RuleResult("schema", None, True, "accepts the champion's input schema", values)
    problems = []
    if missing:
        problems.append(f"needs input(s) the champion does not take: {', '.join(missing)}")
    if retyped:
        problems.append(f"changes input type(s): {', '.join(retyped)}")
    text = "; ".join(problems)
    if allowed:
        return RuleResult("schema", None, True, f"{text} (allow_schema_change = true)", values)
    return RuleResult("schema", None, False, text, values)


def _slices(X: pd.DataFrame, column: str) -> pd.Series:
    """Slice labels of ``column``: its values, or quartiles when it is a number with many."""
    values = X[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 8:
        return pd.qcut(values, 4, duplicates="drop").astype(str)
    return values.astype(str)


def _slice_rule(
    rules: GateRules,
    primary: str,
    column: str,
    X: pd.DataFrame,
    y: np.ndarray,
    chal_out: np.ndarray,
    champ_out: np.ndarray,
    chal_classes: list[Any],
    champ_classes: list[Any],
) -> RuleResult:
    if column not in X.columns:
        return RuleResult(
            "slice", column, False, f"slice column {column!r} is not in the held-out rows"
        )
    labels = _slices(X, column).to_numpy()
    judged: dict[str, dict[str, float]] = {}
    worst: tuple[float, str] | None = None
    for label in pd.unique(labels):
        mask = labels == label
        if mask.sum() < rules.slice_min_rows:
            continue
        try:
            chal = float(_func(primary, chal_classes)(y[mask], chal_out[mask]))
            champ = float(_func(primary, champ_classes)(y[mask], champ_out[mask]))
        except ValueError:  # e.g. one class in the slice
            continue
        judged[str(label)] = {"challenger": chal, "champion": champ, "rows": int(mask.sum())}
        if worst is None or champ - chal > worst[0]:
            worst = (champ - chal, str(label))
    values: dict[str, Any] = {"slices": judged, "tolerance": rules.slice_tolerance}
    if worst is None:
        return RuleResult(
            "slice", column, True,
            f"no slice of {column} has {rules.slice_min_rows} rows to judge", values,
        )  # fmt: skip
    ok = worst[0] <= rules.slice_tolerance
    text = (
        f"{primary} on the worst slice {column}={worst[1]} changes by {_fmt(-worst[0])}, "
        + ("within" if ok else "worse than")
        + f" the tolerance {rules.slice_tolerance:.4f} ({len(judged)} slices judged)"
    )
    return RuleResult("slice", column, ok, text, values)


def _onnx_rule(challenger: LoadedModel, champion: LoadedModel) -> RuleResult:
    champ = champion.info.tags.get("onnx_status", "")
    chal = challenger.info.tags.get("onnx_status", "")
    values = {"champion": champ or None, "challenger": chal or None}
    if champ != "ok":
        return RuleResult("onnx", None, True, "the champion has no verified ONNX graph", values)
    if chal == "ok":
        return RuleResult("onnx", None, True, "the ONNX graph verifies, as the champion's", values)
    return RuleResult(
        "onnx", None, False,
        f"the champion serves through ONNX and the challenger does not ({chal or 'not compiled'})",
        values,
    )  # fmt: skip


def _latency_rule(challenger: LoadedModel, X: pd.DataFrame, budget_ms: float) -> RuleResult:
    """Single-row in-process latency of the challenger, p99 over up to 200 rows."""
    import time

    columns = challenger.feature_names or list(X.columns)
    rows = X[columns].head(200)
    predict = (
        challenger.model.predict_proba if challenger.is_classifier else challenger.model.predict
    )
    predict(rows.iloc[[0]])  # warm-up
    times = []
    for position in range(len(rows)):
        started = time.perf_counter()
        predict(rows.iloc[[position]])
        times.append((time.perf_counter() - started) * 1000)
    p99 = float(np.percentile(times, 99))
    ok = p99 <= budget_ms
    text = (
        f"single-row p99 latency {p99:.2f} ms "
        + ("within" if ok else "over")
        + (f" the budget {budget_ms:.2f} ms ({len(times)} rows)")
    )
    values = {"p99_ms": p99, "p50_ms": float(np.percentile(times, 50)), "budget_ms": budget_ms}
    return RuleResult("latency", None, ok, text, values)


def evaluate_gate(
    rules: GateRules,
    primary: str,
    challenger: LoadedModel,
    champion: LoadedModel | None,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    model: str,
) -> Decision:
    """Apply every rule to the challenger (and champion) on the held-out rows ``X``, ``y``."""
    y_arr = y.to_numpy()
    if challenger.is_classifier and len(np.unique(y_arr)) > 2:
        two_only = [m for m in (primary, *rules.guards, *(rules.floors or {})) if m in BINARY_ONLY]
        if two_only:
            raise SpecError(
                f"gate metric(s) {', '.join(two_only)} score two classes and the target has "
                f"{len(np.unique(y_arr))}; use e.g. accuracy or balanced_accuracy"
            )
    sha = heldout_sha256(X, y)
    results: list[RuleResult] = []
    metrics = [primary, *[m for m in rules.guards if m != primary]]
    cache: dict[tuple[str, str], np.ndarray] = {}

    def out(which: LoadedModel, name: str, kind: str) -> np.ndarray:
        if (name, kind) not in cache:
            cache[(name, kind)] = _outputs(which, X, kind)
        return cache[(name, kind)]

    def score(which: LoadedModel, name: str, metric: str) -> tuple[np.ndarray, float]:
        kind, _ = GATE_METRICS[metric]
        output = out(which, name, kind)
        return output, float(_func(metric, which.classes)(y_arr, output))

    if champion is None:
        chance = rules.floors is None  # the default: the primary metric better than chance
        floors = (
            rules.floors
            if not chance
            else ({primary: CHANCE[primary]} if primary in CHANCE else {})
        )
        for metric, minimum in floors.items():
            _, value = score(challenger, "challenger", metric)
            ok = value > minimum if chance else value >= minimum
            if chance:
                words = "beats chance," if ok else "does not beat chance,"
            else:
                words = "reaches" if ok else "is below"
            results.append(
                RuleResult(
                    "floor",
                    metric,
                    ok,
                    f"{metric} {value:.4f} {words} the floor {minimum:.4f}",
                    {"challenger": value, "floor": minimum, "strict": chance},
                )
            )
        if rules.latency_p99_ms is not None:
            results.append(_latency_rule(challenger, X, rules.latency_p99_ms))
        passed = all(r.passed for r in results)
        lead = "no champion: the absolute floors decide"
        if not floors:
            lead += " (none set)"
        shown = [r.reason for r in results if r.passed == passed]
        reason = f"{'accepted' if passed else 'rejected'}: {lead}" + (
            f"; {'; '.join(shown)}" if shown else ""
        )
        return Decision(model, challenger.info.version, None, passed, reason, sha, len(X), results)

    versus = f"champion v{champion.info.version}"
    results.append(_schema_rule(challenger.inputs, champion.inputs, rules.allow_schema_change))
    try:
        for metric in metrics:
            for which, name in ((challenger, "challenger"), (champion, "champion")):
                kind, _ = GATE_METRICS[metric]
                out(which, name, kind)
    except (KeyError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0][:300]
        results.append(
            RuleResult("primary", primary, False, f"{versus} cannot score the rows: {text}")
        )
        reason = "rejected: " + "; ".join(r.reason for r in results if not r.passed)
        return Decision(
            model,
            challenger.info.version,
            champion.info.version,
            False,
            reason,
            sha,
            len(X),
            results,
        )

    # primary: paired bootstrap of the difference
    chal_out, chal_value = score(challenger, "challenger", primary)
    champ_out, champ_value = score(champion, "champion", primary)
    rng = np.random.default_rng(rules.seed)
    idx = rng.integers(0, len(y_arr), size=(rules.resamples, len(y_arr)))
    diffs = _resampled(primary, y_arr, chal_out, idx, challenger.classes) - _resampled(
        primary, y_arr, champ_out, idx, champion.classes
    )
    diffs = diffs[np.isfinite(diffs)]
    alpha = (1 - rules.confidence) / 2
    low, high = (float(v) for v in np.quantile(diffs, [alpha, 1 - alpha]))
    margin = rules.margin * (abs(champ_value) if rules.margin_kind == "relative" else 1.0)
    diff = chal_value - champ_value
    ok = low > margin
    level = f"{rules.confidence:.0%} CI {_fmt(low)}..{_fmt(high)}"
    if ok:
        text = (
            f"{primary} improves by {_fmt(diff)} over {versus} ({level}, {len(diffs)} paired "
            f"resamples), above the margin {margin:.4f}"
        )
    elif diff == 0 and low == high == 0:
        text = f"{primary} ties {versus} ({chal_value:.4f} both, {level}): no improvement"
    else:
        text = (
            f"{primary} changes by {_fmt(diff)} vs {versus} ({level}): the CI's lower bound "
            f"does not clear the margin {margin:.4f}"
        )
    results.append(
        RuleResult(
            "primary",
            primary,
            ok,
            text,
            {
                "challenger": chal_value,
                "champion": champ_value,
                "difference": diff,
                "ci_low": low,
                "ci_high": high,
                "confidence": rules.confidence,
                "resamples": len(diffs),
                "margin": margin,
                "margin_kind": rules.margin_kind,
                "seed": rules.seed,
            },
        )
    )
    for metric, tolerance in rules.guards.items():
        _, c_value = score(challenger, "challenger", metric)
        _, p_value = score(champion, "champion", metric)
        worse = p_value - c_value
        ok = worse <= tolerance
        text = (
            f"{metric} {c_value:.4f} vs {p_value:.4f} ({_fmt(-worse)}), "
            + ("within" if ok else "worse than")
            + f" the tolerance {tolerance:.4f}"
        )
        results.append(
            RuleResult(
                "guard",
                metric,
                ok,
                text,
                {"challenger": c_value, "champion": p_value, "tolerance": tolerance},
            )
        )
    for column in rules.slices:
        results.append(_slice_rule(rules, primary, column, X, y_arr, chal_out, champ_out,
                                   challenger.classes, champion.classes))  # fmt: skip
    if rules.require_onnx:
        results.append(_onnx_rule(challenger, champion))
    if rules.latency_p99_ms is not None:
        results.append(_latency_rule(challenger, X, rules.latency_p99_ms))
    passed = all(r.passed for r in results)
    if passed:
        reason = "accepted: " + "; ".join(r.reason for r in results)
    else:
        reason = "rejected: " + "; ".join(r.reason for r in results if not r.passed)
    return Decision(
        model, challenger.info.version, champion.info.version, passed, reason, sha, len(X), results
    )


def save_decision(engine: Engine, decision: Decision, line: str | None) -> int:
    ensure_schema(engine)
    with engine.begin() as connection:
        result = connection.execute(
            PROMOTION_DECISIONS.insert().values(
                decided_at=datetime.now(UTC),
                model=decision.model,
                version=decision.version,
                champion_version=decision.champion_version,
                line=line,
                passed=decision.passed,
                forced=decision.forced,
                force_reason=decision.force_reason,
                reason=decision.reason,
                heldout_sha256=decision.heldout_sha256,
                heldout_rows=decision.heldout_rows,
                rules=[asdict(r) for r in decision.rules],
            )
        )
    decision.id = int(result.inserted_primary_key[0])
    return decision.id


def read_decisions(engine: Engine, model: str) -> list[dict[str, Any]]:
    """Every decision about ``model``, newest first."""
    table = PROMOTION_DECISIONS
    query = sa.select(table).where(table.c.model == model).order_by(table.c.id.desc())
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
