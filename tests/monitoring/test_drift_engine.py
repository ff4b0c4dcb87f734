"""Planted drifts are found, clean samples are not flagged, edge cases say why."""

import numpy as np
import pandas as pd
import pytest

from mlfactory.exceptions import DataError, SpecError
from mlfactory.monitoring import (
    DriftConfig,
    Status,
    compare_columns,
    detect_drift,
    domain_classifier,
)


def _planted(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cats = np.array(["a", "b", "c"])
    reference = pd.DataFrame(
        {
            "mean_shift": rng.normal(size=n),
            "variance": rng.normal(size=n),
            "clean_num": rng.normal(size=n),
            "new_category": rng.choice(cats, n),
            "clean_cat": rng.choice(cats, n),
        }
    )
    current = pd.DataFrame(
        {
            "mean_shift": rng.normal(0.3, 1.0, size=n),
            "variance": rng.normal(0.0, 1.6, size=n),
            "clean_num": rng.normal(size=n),
            "new_category": rng.choice(np.array(["a", "b", "c", "d"]), n, p=[0.3, 0.3, 0.3, 0.1]),
            "clean_cat": rng.choice(cats, n),
        }
    )
    return reference, current


def test_planted_mean_variance_and_new_category_are_detected():
    reference, current = _planted(3_000)
    report = detect_drift(reference, current)
    status = {f.column: f.status for f in report.features}
    assert status == {
        "mean_shift": "drift",
        "variance": "drift",
        "new_category": "drift",
        "clean_num": "ok",
        "clean_cat": "ok",
    }
    assert report.drifted and report.share_drifted == pytest.approx(0.6)
    by_name = {f.column: f for f in report.features}
    shifted = by_name["mean_shift"]
    mean_gap = shifted.details["mean_current"] - shifted.details["mean_reference"]
    assert shifted.effect >= mean_gap / shifted.details["scale"]  # W1 >= |mean gap|
    assert shifted.effect == pytest.approx(0.3, abs=0.08)  # in reference standard deviations
    assert by_name["new_category"].details["unseen_categories"] == ["d"]
    assert by_name["new_category"].effect == pytest.approx(0.1, abs=0.02)  # 10% of rows moved
    assert report.ordered_features()[-1].column in {"clean_num", "clean_cat"}
    for f in report.features:  # every result carries its effect next to its p-value
        assert f.p_value is not None and f.p_adjusted >= f.p_value and f.effect is not None


def test_false_positive_rate_on_one_distribution_is_near_alpha():
    rng = np.random.default_rng(42)
    config = DriftConfig(alpha=0.05)
    flagged = {"numeric": 0, "categorical": 0}
    repeats = 200
    for _ in range(repeats):
        frame = pd.DataFrame(
            {"x": rng.normal(size=400), "c": rng.choice(np.array(["p", "q", "r"]), 400)}
        )
        for kind, column in (("numeric", "x"), ("categorical", "c")):
            (result,) = compare_columns(
                frame.iloc[:200], frame.iloc[200:], [column], config, max_workers=1
            )
            flagged[kind] += result.drifted
    for count in flagged.values():
        assert 0.01 <= count / repeats <= 0.09  # alpha 0.05 +/- 2 standard errors


def test_huge_samples_small_real_shift_caught_trivial_shift_ignored():
    rng = np.random.default_rng(7)
    n = 1_000_000
    reference = pd.DataFrame({"small_shift": rng.normal(size=n), "clean": rng.normal(size=n)})
    current = pd.DataFrame(
        {"small_shift": rng.normal(0.05, 1.0, size=n), "clean": rng.normal(size=n)}
    )
    results = {f.column: f for f in compare_columns(reference, current)}
    assert results["small_shift"].drifted
    assert results["small_shift"].effect == pytest.approx(0.05, abs=0.005)
    assert not results["clean"].drifted
    half = n // 2
    trivial = pd.DataFrame({"t": rng.normal(0.015, 1.0, size=half)})
    base = reference.iloc[:half].rename(columns={"clean": "t"})
    (result,) = compare_columns(base, trivial, ["t"])
    assert result.p_adjusted < 1e-4  # significant ...
    assert result.status == Status.OK and "trivial" in result.reason  # ... but below the floor


def test_edge_cases_are_not_testable_with_a_reason():
    n = 100
    reference = pd.DataFrame(
        {
            "constant": np.ones(n),
            "all_null": np.full(n, np.nan),
            "tiny": [1.0] * 10 + [np.nan] * (n - 10),
            "when": pd.date_range("2020-01-01", periods=n),
            "fine": np.arange(n, dtype=float),
        }
    )
    current = reference.copy()
    report = detect_drift(reference, current)
    reasons = {f.column: (f.status, f.reason) for f in report.features}
    assert reasons["constant"] == ("not testable", "constant (1) in both samples")
    assert reasons["all_null"] == ("not testable", "no non-null values in the reference sample")
    assert reasons["tiny"][0] == "not testable" and "fewer than 30" in reasons["tiny"][1]
    assert reasons["when"][0] == "not testable" and "unsupported dtype" in reasons["when"][1]
    assert reasons["fine"][0] == "ok"
    assert report.share_drifted == 0.0 and not report.drifted
    # a constant reference against a changed current is a real drift, not an edge case
    changed = detect_drift(reference[["constant"]], reference[["constant"]] + 1.0)
    assert changed.features[0].drifted


def test_bad_inputs_raise_clear_errors():
    frame = pd.DataFrame({"x": np.arange(50.0)})
    with pytest.raises(
        DataError,
        match=r"column\(s\) y not in the reference sample; its columns are: x",
    ):
        detect_drift(frame, frame, ["y"])
    with pytest.raises(DataError, match="share no column"):
        detect_drift(frame, frame.rename(columns={"x": "z"}))
    with pytest.raises(DataError, match="current sample has no rows"):
        detect_drift(frame, frame.iloc[:0])
    with pytest.raises(SpecError, match="alpha"):
        DriftConfig(alpha=2)


def test_sample_subsamples_with_a_fixed_seed_and_labels_are_tested():
    reference, current = _planted(5_000, seed=3)
    reference["label"] = np.r_[np.zeros(4_000, int), np.ones(1_000, int)]
    current["label"] = np.r_[np.zeros(2_500, int), np.ones(2_500, int)]
    config = DriftConfig(sample=1_000)
    first = detect_drift(reference, current, config=config, target="label")
    second = detect_drift(reference, current, config=config, target="label")
    assert first.features[0].n_reference == 1_000
    assert [f.p_value for f in first.features] == [f.p_value for f in second.features]
    assert "label" not in [f.column for f in first.features]
    (label,) = first.labels
    assert label.kind == "categorical" and label.drifted
    assert "labels drifted" in first.reasons


def test_prediction_drift_is_reported():
    rng = np.random.default_rng(5)
    reference, current = _planted(1_000, seed=5)
    report = detect_drift(
        reference[["clean_num"]],
        current[["clean_num"]],
        reference_predictions=pd.Series(rng.uniform(0, 1, 1_000)),
        current_predictions=pd.Series(rng.uniform(0.2, 1, 1_000)),
    )
    assert report.predictions[0].drifted and report.predictions[0].test == "ks"
    assert report.reasons == ["predictions drifted"]


def _correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": y})


def test_correlation_flip_is_caught_by_the_domain_classifier_only():
    reference, current = _correlated(1_000, 0.8, 1), _correlated(1_000, -0.8, 2)
    report = detect_drift(reference, current)
    assert report.drifted_features == []  # marginals are both standard normal
    flipped = domain_classifier(reference, current, n_permutations=9, seed=0)
    assert flipped.drifted and flipped.auc > 0.75
    assert flipped.auc > max(flipped.permutation_aucs)
    same = domain_classifier(reference, _correlated(1_000, 0.8, 3), n_permutations=9, seed=0)
    assert not same.drifted and same.auc < 0.6


def test_a_shift_of_a_heavy_tailed_bulk_is_not_hidden_by_its_outliers():
    """Utilisation-like data: mostly 0-1 with a few huge values that inflate the std."""
    rng = np.random.default_rng(5)
    n = 4_000

    def utilisation(scale: float) -> np.ndarray:
        values = rng.beta(0.6, 1.8, n) * scale
        outliers = rng.random(n) < 0.003
        values[outliers] = rng.uniform(1e3, 5e4, outliers.sum())
        return values

    reference = pd.DataFrame({"utilisation": utilisation(1.0)})
    current = pd.DataFrame({"utilisation": utilisation(1.6)})
    feature = detect_drift(reference, current).features[0]
    assert feature.status == "drift", feature.reason
    assert feature.details["scale"] < feature.details["std_reference"] / 10
