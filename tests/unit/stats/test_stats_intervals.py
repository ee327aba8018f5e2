"""Intervals and exact p-values against known values and scipy's reference."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binom, binomtest

from meshchaos.stats import (
    binomial_pvalue,
    bound_pvalue,
    clopper_pearson,
    one_sided_pvalue,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        # Newcombe (1998), Table I, 95% score intervals.
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 20, (0.0, 0.1611)),
        (1, 29, (0.0061, 0.1718)),
    ],
)
def test_wilson_matches_published_values(k: int, n: int, expected: tuple[float, float]) -> None:
    lo, hi = wilson(k, n, 0.95)
    assert lo == pytest.approx(expected[0], abs=1e-4)
    assert hi == pytest.approx(expected[1], abs=1e-4)


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        # Newcombe (1998), Table I, exact (Clopper-Pearson) 95% intervals.
        (81, 263, (0.2527, 0.3676)),
        (15, 148, (0.0578, 0.1617)),
        (0, 20, (0.0, 0.1684)),
        (1, 29, (0.0009, 0.1776)),
    ],
)
def test_clopper_pearson_matches_published_values(
    k: int, n: int, expected: tuple[float, float]
) -> None:
    lo, hi = clopper_pearson(k, n, 0.95)
    assert lo == pytest.approx(expected[0], abs=1e-4)
    assert hi == pytest.approx(expected[1], abs=1e-4)


def test_clopper_pearson_agrees_with_scipy() -> None:
    ci = binomtest(37, 120).proportion_ci(confidence_level=0.999, method="exact")
    assert clopper_pearson(37, 120, 0.999) == pytest.approx((ci.low, ci.high))


@pytest.mark.parametrize("interval", [wilson, clopper_pearson])
def test_empty_sample_knows_nothing(interval: object) -> None:
    assert interval(0, 0, 0.95) == (0.0, 1.0)  # type: ignore[operator]


@pytest.mark.parametrize("n", [10, 50, 200])
@pytest.mark.parametrize("p", [0.02, 0.3, 0.5, 0.97])
def test_clopper_pearson_coverage_is_at_least_nominal(n: int, p: float) -> None:
    # Exact coverage: sum the pmf over the k whose interval contains p.
    covered = sum(
        binom.pmf(k, n, p)
        for k in range(n + 1)
        if clopper_pearson(k, n, 0.95)[0] <= p <= clopper_pearson(k, n, 0.95)[1]
    )
    assert covered >= 0.95 - 1e-9


@pytest.mark.parametrize("n", [50, 200])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_wilson_coverage_is_near_nominal(n: int, p: float) -> None:
    covered = sum(
        binom.pmf(k, n, p) for k in range(n + 1) if wilson(k, n)[0] <= p <= wilson(k, n)[1]
    )
    assert covered == pytest.approx(0.95, abs=0.03)


@pytest.mark.parametrize(
    ("k", "n", "p0"),
    [(3, 10, 0.3), (0, 10, 0.3), (50, 100, 0.5), (87, 100, 0.99), (12, 200, 0.05), (1, 1000, 0.01)],
)
def test_binomial_pvalue_is_scipy_binomtest(k: int, n: int, p0: float) -> None:
    assert binomial_pvalue(k, n, p0) == pytest.approx(binomtest(k, n, p0).pvalue, rel=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "p0", "expected"),
    [
        (0, 50, 0.0, 1.0),
        (1, 50, 0.0, 0.0),
        (50, 50, 1.0, 1.0),
        (49, 50, 1.0, 0.0),
        (0, 0, 0.3, 1.0),
    ],
)
def test_binomial_pvalue_degenerate_nulls_are_exact(
    k: int, n: int, p0: float, expected: float
) -> None:
    assert binomial_pvalue(k, n, p0) == expected


def test_one_sided_pvalues() -> None:
    assert one_sided_pvalue(5, 100, 0.01, "greater") == pytest.approx(binom.sf(4, 100, 0.01))
    assert one_sided_pvalue(0, 100, 0.01, "greater") == 1.0
    assert one_sided_pvalue(2, 100, 0.1, "less") == pytest.approx(binom.cdf(2, 100, 0.1))
    assert one_sided_pvalue(3, 100, 0.0, "greater") == 0.0


def test_bound_pvalue_is_one_well_inside_the_band() -> None:
    assert bound_pvalue(50, 100, 0.3, 0.7) == 1.0


def test_bound_pvalue_tests_the_nearer_edge_doubled() -> None:
    assert bound_pvalue(20, 100, 0.3, 0.7) == pytest.approx(2 * binom.cdf(20, 100, 0.3))
    assert bound_pvalue(85, 100, 0.3, 0.7) == pytest.approx(2 * binom.sf(84, 100, 0.7))


@pytest.mark.parametrize("k", [5, 12, 20, 30, 62, 71, 80])
def test_bound_pvalue_is_dual_to_clopper_pearson(k: int) -> None:
    alpha = 0.01
    lo, hi = clopper_pearson(k, 100, 1 - alpha)
    disjoint = hi < 0.3 or lo > 0.7
    assert (bound_pvalue(k, 100, 0.3, 0.7) <= alpha) == disjoint


def test_bound_pvalue_with_open_edges() -> None:
    # A band reaching 0 or 1 cannot be missed on that side.
    assert bound_pvalue(0, 100, 0.0, 0.2) == 1.0
    assert bound_pvalue(100, 100, 0.8, 1.0) == 1.0
    assert bound_pvalue(100, 100, 0.0, 0.2) < 1e-20


@pytest.mark.parametrize("bad", [(-1, 10), (11, 10)])
def test_counts_are_validated(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_pvalue(bad[0], bad[1], 0.5)


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson(1, 10, 1.0)
    with pytest.raises(ValueError, match="p0"):
        binomial_pvalue(1, 10, 1.5)
    with pytest.raises(ValueError, match="low <= high"):
        bound_pvalue(1, 10, 0.5, 0.4)
    assert math.isfinite(bound_pvalue(1, 10, 0.4, 0.4))
