"""The KS statistic read off one merge of the two sorted samples equals scipy's in every branch:
no ties, ties within one sample, values shared by both samples, few or many distinct values."""

import numpy as np
import pytest
from scipy import stats

from mlfactory.monitoring._stats import ks_statistic


def _scipy_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """scipy's statistic (``ks_2samp`` without its p-value: it warns on one-row samples)."""
    if min(a.size, b.size) > 1:
        return float(stats.ks_2samp(a, b, method="asymp").statistic)
    both = np.concatenate([a, b])
    gaps = (
        np.searchsorted(np.sort(a), both, "right") / a.size
        - np.searchsorted(np.sort(b), both, "right") / b.size
    )
    return float(np.abs(gaps).max())


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    base = rng.normal(size=3_000)
    return [
        ("no ties", rng.normal(size=2_000), rng.normal(0.1, size=1_500)),
        ("disjoint ranges", rng.uniform(0, 1, 500), rng.uniform(2, 3, 700)),
        ("b below a", rng.uniform(2, 3, 500), rng.uniform(0, 1, 700)),
        ("one value each", np.array([0.5]), np.array([0.25])),
        ("shared values only", base[:2_000], base[1_000:]),  # cross ties, none within
        ("ties within a", np.repeat(rng.normal(size=400), 3), rng.normal(size=900)),
        (
            "few distinct",
            rng.poisson(4, 5_000).astype(float),
            rng.poisson(4.2, 4_000).astype(float),
        ),
        ("many distinct, some ties", np.round(rng.normal(size=4_000), 3), rng.normal(size=4_000)),
        ("identical", base, base.copy()),
    ]


@pytest.mark.parametrize(("name", "a", "b"), _cases(), ids=[c[0] for c in _cases()])
def test_merged_ks_statistic_equals_scipy(name, a, b):
    expected = _scipy_statistic(a, b)
    assert ks_statistic(np.sort(a), np.sort(b)) == pytest.approx(expected, abs=1e-12)
    assert ks_statistic(np.sort(b), np.sort(a)) == pytest.approx(expected, abs=1e-12)


def test_merged_ks_statistic_equals_scipy_on_random_small_samples():
    rng = np.random.default_rng(11)
    for trial in range(400):
        n1, n2 = rng.integers(1, 40, 2)
        pool = rng.integers(0, 12, 60).astype(float) if trial % 2 else rng.normal(size=60)
        a, b = rng.choice(pool, n1), rng.choice(pool, n2)
        expected = _scipy_statistic(a, b)
        assert ks_statistic(np.sort(a), np.sort(b)) == pytest.approx(expected, abs=1e-12), (a, b)
