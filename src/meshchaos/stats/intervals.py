"""Confidence intervals and exact p-values for binomial proportions.

Every verdict on a rate goes through here: the share of an outcome class, the share
of samples outside a latency band, a proxy counter per request. The tests are exact
(binomial), so their false-alarm rate is at most the nominal level for every ``n``,
unlike a normal approximation, which fails most where chaos tests live (shares near
0 or 1, small samples).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = [
    "Alternative",
    "binomial_pvalue",
    "bound_pvalue",
    "clopper_pearson",
    "one_sided_pvalue",
    "wilson",
]

Alternative = Literal["two-sided", "greater", "less"]

# scipy.stats.binomtest's relative tolerance for "as or less likely than observed";
# without it, outcomes whose pmf ties with the observed one in exact arithmetic are
# dropped by rounding. Same value as scipy/stats/_binomtest.py.
_RERR = 1 + 1e-7


def binom_pmf(ks: npt.NDArray[np.int_], n: int, p: float) -> npt.NDArray[np.float64]:
    """Binomial pmf at the counts ``ks``, for ``0 < p < 1``.

    From scipy.special's log-gamma rather than ``scipy.stats.binom.pmf``, whose
    argument handling costs ~0.5 ms a call; a run judges thousands of checks. The
    relative error (~1e-11 at n = 1e5) is far inside binomtest's 1e-7 tie tolerance.
    """
    k = ks.astype(np.float64)
    logpmf = (
        special.gammaln(n + 1)
        - special.gammaln(k + 1)
        - special.gammaln(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )
    result: npt.NDArray[np.float64] = np.exp(logpmf)
    return result


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _check_probability(p: float, what: str = "p0") -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{what} must be in [0, 1], got {p}")


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials.

    Close to nominal coverage on average and never outside [0, 1]; with ``n == 0``
    nothing is known and the interval is [0, 1].
    """
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    z = float(special.ndtri(1 - (1 - confidence) / 2))
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    # Clamp the exact ends: rounding would otherwise give e.g. 1e-17 for k == 0.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval: coverage >= ``confidence`` for every true p.

    It is the set of p0 that the equal-tailed exact test does not reject at level
    ``1 - confidence``, so it agrees with :func:`bound_pvalue`.
    """
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    tail = (1 - confidence) / 2
    # The beta quantiles of the classic construction, from scipy.special directly
    # (scipy.stats.beta.ppf is the same function behind ~0.5 ms of argument checks).
    lo = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, tail))
    hi = 1.0 if k == n else float(special.betainccinv(k + 1, n - k, tail))
    return lo, hi


def binomial_pvalue(k: int, n: int, p0: float) -> float:
    """Two-sided exact binomial p-value of ``k`` in ``n`` against ``p0``.

    The same statistic as ``scipy.stats.binomtest(k, n, p0).pvalue`` (the sum of the
    probabilities of all outcomes no more likely than ``k``), computed from one pmf
    vector because binomtest's search costs ~0.6 ms a call and a run makes thousands.
    ``p0`` of 0 or 1 is decided exactly: 1.0 when ``k`` is possible, else 0.0.
    """
    _check_counts(k, n)
    _check_probability(p0)
    if n == 0:
        return 1.0
    if p0 == 0.0:
        return 1.0 if k == 0 else 0.0
    if p0 == 1.0:
        return 1.0 if k == n else 0.0
    pmf = binom_pmf(np.arange(n + 1), n, p0)
    return float(min(1.0, pmf[pmf <= pmf[k] * _RERR].sum()))


def one_sided_pvalue(k: int, n: int, p0: float, alternative: Alternative) -> float:
    """Exact one-sided p-value: ``P(X >= k)`` for "greater", ``P(X <= k)`` for "less"."""
    _check_counts(k, n)
    _check_probability(p0)
    if alternative == "two-sided":
        return binomial_pvalue(k, n, p0)
    if n == 0:
        return 1.0
    # special.bdtrc(k, n, p) = P(X > k) and bdtr(k, n, p) = P(X <= k): the functions
    # behind scipy.stats.binom.sf/cdf. p0 of 0 or 1 is decided exactly.
    if alternative == "greater":
        if k == 0:
            return 1.0
        if p0 in (0.0, 1.0):
            return 1.0 if p0 == 1.0 else 0.0
        return float(special.bdtrc(k - 1, n, p0))
    if k == n:
        return 1.0
    if p0 in (0.0, 1.0):
        return 1.0 if p0 == 0.0 else 0.0
    return float(special.bdtr(k, n, p0))


def bound_pvalue(k: int, n: int, low: float, high: float) -> float:
    """Exact p-value of ``k`` in ``n`` against "the share lies in [low, high]".

    The null is composite, so each one-sided p-value is taken at the least favourable
    point of the null, which is the nearer edge: ``P(X <= k | low)`` for a shortfall,
    ``P(X >= k | high)`` for an excess. The smaller of the two is doubled, because
    which side to test is chosen from the data (without doubling, ``low == high``
    would run at twice the nominal level). Hence: the p-value is <= alpha exactly when
    the ``1 - alpha`` Clopper-Pearson interval misses [low, high], it is 1.0 when the
    point estimate sits well inside, and the test is conservative (never liberal) for
    every p in the band.
    """
    _check_counts(k, n)
    _check_probability(low, "low")
    _check_probability(high, "high")
    if low > high:
        raise ValueError(f"need low <= high, got [{low}, {high}]")
    if n == 0:
        return 1.0
    below = one_sided_pvalue(k, n, low, "less") if low > 0 else 1.0
    above = one_sided_pvalue(k, n, high, "greater") if high < 1 else 1.0
    return min(1.0, 2 * min(below, above))
