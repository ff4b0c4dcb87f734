"""Two-sample statistics on plain arrays: KS, chi-square, PSI, Wasserstein, Jensen-Shannon.

Numeric columns are sorted once; every numeric statistic is then read off the two sorted arrays
(one merge of the two for KS, arithmetic on quantile levels), so a 1M x 1M comparison costs little
more than the two sorts.

``scipy.stats`` takes ~0.5 s to import, a fifth of a 1M x 1M comparison: the chi-square test, the
Benjamini-Hochberg adjustment and the KS distribution at large samples are computed here with
``scipy.special`` (the same formulas as scipy, checked equal in tests/monitoring/test_stats.py);
``scipy.stats`` is imported only for KS p-values of samples of up to 100,000 (effective) rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "PSI_EPSILON",
    "CategoricalStats",
    "NumericStats",
    "bh_adjust",
    "categorical_stats",
    "chi2_contingency",
    "jensen_shannon",
    "ks_pvalue",
    "ks_statistic",
    "numeric_stats",
    "psi",
    "quantile_edges",
    "sorted_quantiles",
    "wasserstein_sorted",
]

PSI_EPSILON = 1e-4  # share given to an empty bin so that PSI stays finite
_SCIPY_EXACT_MAX_N = 10_000  # scipy's 'auto' switches to the exact KS distribution below this
_ASYMPTOTIC_MIN_EN = 100_000  # above this effective n, tiny p-values use Kolmogorov's limit
_ASYMPTOTIC_MIN_Z = 2.2  # n*D**2 from which scipy uses its slow exact Smirnov sum


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided asymptotic p-value of the two-sample KS statistic, as ``scipy.stats.ks_2samp``.

    scipy evaluates ``kstwo.sf(d, round(n1*n2/(n1+n2)))``. Where the effective size exceeds
    100,000 and ``n*d**2 >= 2.2`` (p below ~0.02), scipy switches to an exact Smirnov sum that
    costs over a second per column; there Kolmogorov's limiting distribution times its first
    finite-n correction ``exp(-2d/3)`` is used instead (relative error below 0.2% for p down to
    1e-18, so only a p-value within 0.2% of a threshold could change side). Everywhere else the
    value is scipy's own.
    """
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = float(np.round(m * n / (m + n)))
    z = en * d * d
    if z >= 370.0:  # scipy returns exactly 0 here too
        return 0.0
    if en > _ASYMPTOTIC_MIN_EN and z >= _ASYMPTOTIC_MIN_Z:
        # Kolmogorov's limit with its first finite-n correction, exp(-2d/3)
        return float(np.clip(special.kolmogorov(math.sqrt(en) * d) * math.exp(-2 * d / 3), 0, 1))
    if en > _ASYMPTOTIC_MIN_EN:
        return _kstwo_sf_large(d, en)
    from scipy import stats  # ~0.5 s to import: only for samples of up to 100,000 rows

    return float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))


def _kstwo_sf_large(x: float, n: float) -> float:
    """``scipy.stats.kstwo.sf(x, n)`` for n > 100,000 and ``n*x**2 < 2.2``: scipy's own branches
    (``scipy/stats/_ksstats.py``, ``_kolmogn`` with ``cdf=False``), without importing scipy.stats.
    """
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        log_factorial = (  # log(n! / n**n), Stirling's series as scipy's
            math.log(n) / 2 - n + math.log(2 * math.pi) / 2 + np.polyval(_STIRLING, 1 / n / n) / n
        )
        return float(np.clip(1.0 - math.exp(log_factorial + n * math.log(2 * t - 1)), 0, 1))
    if t >= n - 1:  # Ruben-Gambino
        return float(np.clip(2 * (1.0 - x) ** n, 0.0, 1.0))
    if x >= 0.5:  # exact: 2 * smirnov
        return float(np.clip(2 * special.smirnov(n, x), 0.0, 1.0))
    if t * x >= 18.0:
        return 0.0
    return float(np.clip(1.0 - _pelz_good_cdf(n, x), 0.0, 1.0))


# Bernoulli-number coefficients of Stirling's series (scipy's _STIRLING_COEFFS)
_STIRLING = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
]


def _pelz_good_cdf(n: float, x: float) -> float:
    """The Pelz-Good (1976) approximation of P(D_n <= x), as scipy's ``_kolmogn_PelzGood``."""
    pi2, pi4, pi6 = np.pi**2, np.pi**4, np.pi**6
    sqrt2pi = np.sqrt(2 * np.pi)
    z = np.sqrt(n) * x
    z2, z3, z4, z6 = z**2, z**3, z**4, z**6
    qlog = -pi2 / 8 / z2
    if qlog < -708:
        return 0.0
    q = np.exp(qlog)
    k1a, k1b = -z2, pi2 / 4
    k2a, k2b, k2c = 6 * z6 + 2 * z4, (2 * z4 - 5 * z2) * pi2 / 4, pi4 * (1 - 2 * z2) / 16
    k3d = pi6 * (5 - 30 * z2) / 64
    k3c = pi4 * (-60 * z2 + 212 * z4) / 16
    k3b = pi2 * (135 * z4 - 96 * z6) / 4
    k3a = -30 * z6 - 90 * z**8
    terms = np.zeros(4)
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):  # Horner scheme over odd m = 2k - 1
        m = 2 * k - 1
        m2, m4, m6 = m**2, m**4, m**6
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * m2,
                k2a + k2b * m2 + k2c * m4,
                k3a + k3b * m2 + k3c * m4 + k3d * m6,
            ]
        )
        terms *= np.power(q, 8 * k)
        terms += coeffs
    terms *= q
    terms *= sqrt2pi
    terms /= np.array([z, 6 * z4, 72 * z**7, 6480 * z**10])
    q = np.exp(-pi2 / 2 / z2)
    ks = np.arange(maxk, 0, -1)
    ks2 = ks**2
    powers = q**ks2
    terms[2] += np.sum(ks2 * powers) * pi2 * sqrt2pi / (-36 * z3)
    sqrt3z, kspi = np.sqrt(3) * z, np.pi * ks
    terms[3] += (
        np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * powers) * pi2 * sqrt2pi / (216 * z6)
    )
    terms /= np.power(n * 1.0, np.arange(4) / 2.0)
    return float(sum(terms))


def bh_adjust(p_values: object) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values, as ``scipy.stats.false_discovery_control(ps,
    method="bh")``."""
    ps = np.asarray(p_values, dtype=float)
    if ps.size <= 1:
        return ps.copy()
    order = np.argsort(ps, kind="stable")
    adjusted = ps[order] * (ps.size / np.arange(1, ps.size + 1, dtype=float))
    np.minimum.accumulate(adjusted[::-1], out=adjusted[::-1])
    result = np.empty_like(adjusted)
    result[order] = adjusted
    return np.clip(result, 0.0, 1.0)


@dataclass(frozen=True)
class Chi2Result:
    statistic: float
    pvalue: float
    dof: int


def chi2_contingency(observed: np.ndarray) -> Chi2Result:
    """Pearson's chi-square test of independence on a 2-D table of counts, as
    ``scipy.stats.chi2_contingency(observed)``: Yates' continuity correction when dof is 1."""
    table = np.asarray(observed, dtype=np.float64)
    if np.any(table < 0):
        raise ValueError("All values in `observed` must be nonnegative.")
    expected = np.multiply(table.sum(axis=1, keepdims=True), table.sum(axis=0, keepdims=True))
    expected = expected / table.sum()
    if np.any(expected == 0):
        zero = next(zip(*np.nonzero(expected == 0), strict=True))
        raise ValueError(
            f"The internally computed table of expected frequencies has a zero element at {zero}."
        )
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    if dof == 0:
        return Chi2Result(0.0, 1.0, 0)
    if dof == 1:  # Yates, no larger than the difference (scipy gh-13875)
        diff = expected - table
        table = table + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return Chi2Result(statistic, float(special.chdtrc(dof, statistic)), dof)


def sorted_quantiles(sorted_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile(values, levels)`` (linear method) read off an already sorted array.

    np.quantile partitions its input again; on sorted data two lookups per level suffice.
    """
    position = np.asarray(levels, dtype=float) * (sorted_values.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, sorted_values.size - 1)
    low, high = sorted_values[below], sorted_values[above]
    return low + (position - below) * (high - low)


def quantile_edges(sorted_reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior bin edges at the reference's quantiles 1/bins ... (bins-1)/bins, deduplicated.

    Bins are ``(-inf, e1), [e1, e2), ..., [ek, inf)``, so values outside the reference's range
    fall into the first or last bin.
    """
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.unique(sorted_quantiles(sorted_reference, levels))


def _bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    cuts = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate([[0], cuts, [sorted_values.size]]))


def psi(reference_share: np.ndarray, current_share: np.ndarray, eps: float = PSI_EPSILON) -> float:
    """Population Stability Index: sum of (c - r) * ln(c / r), empty shares replaced by ``eps``."""
    r = np.where(reference_share > 0, reference_share, eps)
    c = np.where(current_share > 0, current_share, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two share vectors."""
    p = np.asarray(reference_share, dtype=float)
    q = np.asarray(current_share, dtype=float)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0)
    return float(math.sqrt(max(0.0, (kl_p.sum() + kl_q.sum()) / 2.0)))


@dataclass(frozen=True)
class NumericStats:
    ks_statistic: float
    p_value: float
    wasserstein: float  # raw, in the column's units
    scale: float  # robust reference spread: IQR / 1.349 (the std when the IQR is 0)
    psi: float
    js_distance: float
    mean_reference: float
    mean_current: float
    std_reference: float
    std_current: float

    @property
    def wasserstein_norm(self) -> float:
        """Wasserstein distance in robust reference spreads (a mean shift of d sd gives d).

        The spread is the reference's IQR / 1.349 — its standard deviation for normal data, but
        not inflated by a heavy tail's few huge values (which would hide a real shift of the
        bulk) — or its standard deviation when the IQR is 0 (mostly-constant counts).
        """
        return self.wasserstein / self.scale


def ks_statistic(sorted_a: np.ndarray, sorted_b: np.ndarray) -> float:
    """Two-sided KS statistic: the largest ECDF gap over both samples' points (scipy's).

    scipy evaluates both ECDFs at all n1 + n2 points with two searchsorted of n1 + n2 keys. Here
    the two sorted arrays are merged once (a stable argsort of their concatenation, which finds
    the two sorted runs and merges them), giving ``s_j``, the number of a values <= ``b[j]``.
    Without ties the gap ``Fa - Fb`` only grows between two consecutive b points, so its maximum
    is at the last a point before ``b[j]`` (``s_j/n1 - j/n2``) and its minimum at ``b[j]``
    (``s_j/n1 - (j+1)/n2``); the extremes are found on exact integers and evaluated with scipy's
    divisions. With ties, both ECDFs are read at the end of every run of equal merged values.
    """
    n1, n2 = sorted_a.size, sorted_b.size
    merged = np.concatenate([sorted_a, sorted_b])
    order = np.argsort(merged, kind="stable")  # a values first among equal values
    values = merged[order]
    if not (values[1:] == values[:-1]).any():
        j = np.arange(n2)
        below = np.flatnonzero(order >= n1) - j  # s_j: a values <= b[j]
        gap = below * n2 - j * n1  # n1 * n2 * (s_j/n1 - j/n2), exact
        top, bottom = int(np.argmax(gap)), int(np.argmin(gap))
        before = below[top] / n1 - top / n2  # at the last a point before b[top]
        at = (bottom + 1) / n2 - below[bottom] / n1  # at b[bottom]
        return float(max(before, at, 0.0))
    ends = np.append(np.flatnonzero(values[1:] != values[:-1]), values.size - 1)
    if ends.size * 8 < values.size:  # few distinct values: look each one up in a
        from_a = np.searchsorted(sorted_a, values[ends], "right")
    else:
        from_a = np.cumsum(order < n1)[ends]  # a values <= each distinct value
    diffs = from_a / n1 - (ends + 1 - from_a) / n2
    return float(np.abs(diffs).max())


def wasserstein_sorted(sorted_a: np.ndarray, sorted_b: np.ndarray) -> float:
    """1-Wasserstein distance as the integral of |Qa(u) - Qb(u)| over the quantile levels u.

    Equal to scipy's integral of |Fa - Fb| over x. The breakpoints i/n1 and j/n2 of both
    quantile functions are merged by integer arithmetic (no sort), so the cost is a few passes.
    """
    n1, n2 = sorted_a.size, sorted_b.size
    if n1 == n2:
        return float(np.abs(sorted_a - sorted_b).mean())
    i = np.arange(1, n1 + 1, dtype=np.int64)
    j = np.arange(1, n2 + 1, dtype=np.int64)
    pos_a = (i - 1) + (i * n2) // n1  # b-breakpoints <= i/n1 come first
    pos_b = (j - 1) + (j * n1 - 1) // n2  # a-breakpoints < j/n2 come first
    levels = np.empty(n1 + n2)
    levels[pos_a], levels[pos_b] = i / n1, j / n2
    index_a = np.empty(n1 + n2, dtype=np.int64)
    index_b = np.empty(n1 + n2, dtype=np.int64)
    index_a[pos_a], index_a[pos_b] = i - 1, (j * n1 + n2 - 1) // n2 - 1  # ceil(u n1) - 1
    index_b[pos_b], index_b[pos_a] = j - 1, (i * n2 + n1 - 1) // n1 - 1
    widths = np.diff(levels, prepend=0.0)
    return float(np.dot(widths, np.abs(sorted_a[index_a] - sorted_b[index_b])))


def numeric_stats(sorted_ref: np.ndarray, sorted_cur: np.ndarray, bins: int = 10) -> NumericStats:
    """Every numeric statistic from two sorted, NaN-free, non-empty float arrays.

    The KS statistic and the Wasserstein distance equal scipy's; both are read off the two sorted
    arrays (one merge for KS; quantile functions merged by arithmetic).
    """
    n1, n2 = sorted_ref.size, sorted_cur.size
    d = ks_statistic(sorted_ref, sorted_cur)
    wasserstein = wasserstein_sorted(sorted_ref, sorted_cur)
    if max(n1, n2) <= _SCIPY_EXACT_MAX_N:
        from scipy import stats

        p_value = float(stats.ks_2samp(sorted_ref, sorted_cur).pvalue)  # exact distribution
    else:
        p_value = ks_pvalue(d, n1, n2)
    std_ref = float(sorted_ref.std())
    q1, q3 = sorted_ref[int(0.25 * (n1 - 1))], sorted_ref[int(0.75 * (n1 - 1))]
    robust = float(q3 - q1) / 1.349
    scale = robust if robust > 0 else std_ref
    if scale <= 0:
        scale = float(np.concatenate([sorted_ref, sorted_cur]).std())
    edges = quantile_edges(sorted_ref, bins)
    ref_share = _bin_counts(sorted_ref, edges) / n1
    cur_share = _bin_counts(sorted_cur, edges) / n2
    return NumericStats(
        ks_statistic=d,
        p_value=p_value,
        wasserstein=wasserstein,
        scale=scale,
        psi=psi(ref_share, cur_share),
        js_distance=jensen_shannon(ref_share, cur_share),
        mean_reference=float(sorted_ref.mean()),
        mean_current=float(sorted_cur.mean()),
        std_reference=std_ref,
        std_current=float(sorted_cur.std()),
    )


@dataclass(frozen=True)
class CategoricalStats:
    chi2: float
    p_value: float
    dof: int
    categories: list[str]
    reference_counts: list[int]
    current_counts: list[int]
    tvd: float  # total variation distance of the category shares, in [0, 1]
    psi: float
    js_distance: float
    unseen: list[str]  # categories of the current sample absent from the reference


def categorical_stats(reference_counts: dict, current_counts: dict) -> CategoricalStats:
    """Chi-square test of homogeneity on the 2 x k table of counts (``chi2_contingency``).

    Categories are the union of both samples, so a category never seen in the reference is a
    column ``(0, c)`` of the table. Shares give the total variation distance, PSI and JS distance.
    """
    categories = sorted(set(reference_counts) | set(current_counts), key=str)
    ref = np.array([reference_counts.get(c, 0) for c in categories], dtype=np.int64)
    cur = np.array([current_counts.get(c, 0) for c in categories], dtype=np.int64)
    result = chi2_contingency(np.vstack([ref, cur]))
    ref_share, cur_share = ref / ref.sum(), cur / cur.sum()
    return CategoricalStats(
        chi2=float(result.statistic),
        p_value=float(result.pvalue),
        dof=int(result.dof),
        categories=[str(c) for c in categories],
        reference_counts=ref.tolist(),
        current_counts=cur.tolist(),
        tvd=float(np.abs(ref_share - cur_share).sum() / 2.0),
        psi=psi(ref_share, cur_share),
        js_distance=jensen_shannon(ref_share, cur_share),
        unseen=[str(c) for c, r in zip(categories, ref, strict=True) if r == 0],
    )
