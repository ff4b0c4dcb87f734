"""The statistics equal scipy's (or a hand-computed value)."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlfactory.monitoring import categorical_stats, ks_pvalue, numeric_stats, psi


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "rounded"),
    [
        (50, 80, 0.0, False),  # exact distribution (scipy 'auto' below 10,000)
        (300, 200, 0.5, False),
        (400, 400, 0.0, True),  # many ties
        (20_000, 15_000, 0.0, False),  # asymptotic distribution
        (20_000, 15_000, 0.04, False),
        (30_000, 12_000, 0.02, True),
    ],
)
def test_ks_statistic_and_pvalue_equal_scipy(n1, n2, shift, rounded):
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
    if rounded:
        a, b = np.round(a, 1), np.round(b, 1)
    expected = stats.ks_2samp(a, b)
    ours = numeric_stats(np.sort(a), np.sort(b))
    assert ours.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert ours.wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_small_ks_pvalues_at_huge_n_use_the_limit_distribution_closely():
    # scipy's exact Smirnov sum costs ~1 s here; the corrected limit is within 0.2%
    n = 300_000  # effective n 150,000
    for d in (0.0039, 0.005, 0.008, 0.012):  # n_eff * d**2 = 2.3, 3.75, 9.6, 21.6
        ours = ks_pvalue(d, n, n)
        assert ours < 0.03
        assert ours == pytest.approx(stats.kstwo.sf(d, n // 2), rel=0.002)
    assert ks_pvalue(0.06, n, n) == 0.0 == stats.kstwo.sf(0.06, n // 2)
    for d in (0.001, 0.003):  # the common case (clean columns): scipy's value itself
        assert ks_pvalue(d, n, n) == stats.kstwo.sf(d, n // 2)


def test_psi_equals_hand_computed_example():
    reference = np.arange(1.0, 11.0)  # quartile edges 3.25, 5.5, 7.75 -> shares .3 .2 .2 .3
    current = np.array([1, 1, 1, 1, 1, 6, 6, 6, 9, 9], dtype=float)  # shares .5 0 .3 .2
    result = numeric_stats(np.sort(reference), np.sort(current), bins=4)
    # (.5-.3)ln(.5/.3) + (1e-4-.2)ln(1e-4/.2) + (.3-.2)ln(.3/.2) + (.2-.3)ln(.2/.3)
    # = 0.102165 + 1.519420 + 0.040547 + 0.040547
    assert result.psi == pytest.approx(1.702678, abs=1e-6)
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    expected_js = jensenshannon([0.3, 0.2, 0.2, 0.3], [0.5, 0.0, 0.3, 0.2], base=2)
    assert result.js_distance == pytest.approx(expected_js, rel=1e-9)


def test_wasserstein_is_normalised_by_reference_std():
    rng = np.random.default_rng(0)
    a = rng.normal(10, 4, size=50_000)
    result = numeric_stats(np.sort(a), np.sort(a + 2.0))  # shift of half a standard deviation
    assert result.wasserstein == pytest.approx(2.0, rel=1e-9)
    assert result.wasserstein_norm == pytest.approx(0.5, rel=0.02)


def test_chi_square_equals_chi2_contingency_with_unseen_category():
    reference = {"a": 50, "b": 30, "c": 20}
    current = {"a": 40, "b": 30, "c": 20, "new": 10}
    result = categorical_stats(reference, current)
    table = np.array([[50, 30, 20, 0], [40, 30, 20, 10]])
    expected = stats.chi2_contingency(table)
    assert result.chi2 == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.dof == 3
    assert result.unseen == ["new"]
    assert result.tvd == pytest.approx(0.10)  # 10% of the rows moved to "new"
    expected_js = jensenshannon([0.5, 0.3, 0.2, 0.0], [0.4, 0.3, 0.2, 0.1], base=2)
    assert result.js_distance == pytest.approx(expected_js, rel=1e-9)
    # not a goodness-of-fit test: both samples' sampling noise is accounted for
    gof = stats.chisquare([40, 30, 20], f_exp=[45, 27, 18])
    assert not math.isclose(result.chi2, gof.statistic)


def test_two_by_two_table_uses_yates_correction_like_scipy():
    result = categorical_stats({True: 60, False: 40}, {True: 45, False: 55})
    expected = stats.chi2_contingency(np.array([[40, 60], [55, 45]]))
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_sorted_quantiles_equal_numpy():
    from mlfactory.monitoring._stats import sorted_quantiles

    values = np.sort(np.random.default_rng(3).lognormal(size=1_001))
    levels = np.linspace(0, 1, 101)
    np.testing.assert_allclose(sorted_quantiles(values, levels), np.quantile(values, levels))


def test_large_sample_ks_pvalues_equal_scipy_without_importing_scipy_stats():
    """Above 100,000 effective rows every branch of scipy's kstwo.sf is computed here."""
    from mlfactory.monitoring._stats import _kstwo_sf_large

    for n in (100_001, 150_000, 500_000, 2_000_000):
        for d in (0.0, 1e-7, 0.6 / n, 0.9 / n, 1e-4, 5e-4, 1e-3, 2e-3, 0.6, 1.0):
            if n * d * d >= 2.2:
                continue
            expected = float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))
            assert _kstwo_sf_large(d, n) == pytest.approx(expected, rel=1e-12, abs=1e-300), (n, d)
        d = math.sqrt(2.0 / n)  # just below the switch to the limit distribution
        assert ks_pvalue(d, 2 * n, 2 * n) == pytest.approx(stats.kstwo.sf(d, n), rel=1e-12)


def test_chi2_contingency_and_bh_equal_scipy():
    from mlfactory.monitoring._stats import bh_adjust, chi2_contingency

    rng = np.random.default_rng(7)
    tables = [rng.integers(0, 50, size=(2, k)) + 1 for k in (2, 2, 3, 6)]
    tables += [np.array([[10, 10], [10, 11]]), np.array([[5, 0], [5, 1]]), np.array([[3], [4]])]
    for table in tables:
        ours, theirs = chi2_contingency(table), stats.chi2_contingency(table)
        assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12, abs=1e-15)
        assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-12)
        assert ours.dof == theirs.dof
    with pytest.raises(ValueError, match="zero element"):
        chi2_contingency(np.array([[0, 5], [0, 3]]))
    for ps in ([0.01, 0.04, 0.03, 0.2, 0.04, 1.0, 0.0], rng.uniform(size=40), [0.3]):
        expected = stats.false_discovery_control(ps, method="bh")
        np.testing.assert_allclose(bh_adjust(ps), expected, rtol=1e-15)


def test_a_large_drift_comparison_imports_no_scipy_stats(tmp_path):
    """scipy.stats costs ~0.5 s to import: from 100,000 effective rows drift needs scipy.special."""
    import subprocess
    import sys

    probe = (
        "import sys, numpy as np, pandas as pd\n"
        "from mlfactory.monitoring import detect_drift\n"
        "rng = np.random.default_rng(1)\n"
        "make = lambda s: pd.DataFrame({'x': rng.normal(s, 1, 220_000),"
        " 'c': pd.Categorical(rng.choice(['a', 'b'], 220_000))})\n"
        "report = detect_drift(make(0.0), make(0.002))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scipy.stats', 'sklearn'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
