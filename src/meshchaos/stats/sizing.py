"""Sample sizing: how many requests a scenario needs so that it is not blind.

The verdict is an exact binomial test at the scenario's alpha (see
:mod:`meshchaos.stats.intervals`); here we compute that same test's exact power
against a chosen deviation and search for the smallest sample that reaches the
target power. A normal approximation only seeds the search.

Exact binomial power is a sawtooth in ``n`` (the rejection region moves in whole
counts), so "smallest n" is found by bisection on the sawtooth's envelope followed by
a short downward scan; the returned ``n`` is always one at which the exact power
reaches the target.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.stats import binom, norm

from meshchaos.stats.intervals import _RERR, Alternative, binom_pmf

__all__ = [
    "binomial_power",
    "detectable_effect",
    "latency_sample_size",
    "sample_size",
]

_SCAN_BACK = 50  # how far below the bisection result to look for a sawtooth dip
_MAX_N = 50_000_000


def _validate(p0: float, alpha: float, power: float) -> None:
    if not 0 <= p0 <= 1:
        raise ValueError(f"p0 must be in [0, 1], got {p0}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")


def binomial_power(n: int, p0: float, p1: float, alpha: float, alternative: Alternative) -> float:
    """Exact probability that the level-``alpha`` test of ``p0`` rejects when the truth is ``p1``.

    "two-sided" is the minimum-likelihood test of :func:`binomial_pvalue`; "greater" and
    "less" are the one-sided tests of :func:`one_sided_pvalue`.
    """
    if n <= 0:
        return 0.0
    ks = _support(n, p0, p1)
    if alternative == "two-sided":
        if p0 in (0.0, 1.0):
            # Any count other than the only possible one rejects, at every alpha.
            reject = ks != (0 if p0 == 0.0 else n)
        else:
            pmf0 = binom_pmf(ks, n, p0)
            ordered = np.sort(pmf0)
            cum = np.cumsum(ordered)
            idx = np.searchsorted(ordered, pmf0 * _RERR, side="right") - 1
            reject = np.minimum(cum[idx], 1.0) <= alpha
    elif alternative == "greater":
        reject = (binom.sf(ks - 1, n, p0) <= alpha) & (ks > 0)  # P(X >= 0) = 1
    else:
        reject = (binom.cdf(ks, n, p0) <= alpha) & (ks < n)
    pmf1 = _pmf_any(ks, n, p1)
    return float(min(1.0, pmf1[reject].sum()))


def _support(n: int, p0: float, p1: float) -> npt.NDArray[np.int_]:
    """The counts that carry any probability under ``p0`` or ``p1``.

    Beyond 12 standard deviations (sd <= sqrt(n)/2) the pmf is below 1e-30, so
    dropping those counts changes no p-value or power that matters, and keeps a
    search at n ~ 1e5 fast.
    """
    margin = 12 * math.sqrt(n) / 2 + 5
    lo = max(0, math.floor(min(p0, p1) * n - margin))
    hi = min(n, math.ceil(max(p0, p1) * n + margin))
    return np.arange(lo, hi + 1)


def _pmf_any(ks: npt.NDArray[np.int_], n: int, p: float) -> npt.NDArray[np.float64]:
    if p in (0.0, 1.0):  # all mass on one count
        point: npt.NDArray[np.float64] = (ks == (0 if p == 0.0 else n)).astype(np.float64)
        return point
    return binom_pmf(ks, n, p)


def _alternatives(p0: float, effect: float, two_sided: bool) -> list[tuple[float, Alternative]]:
    """The deviations to guard against: each side that stays in [0, 1], or the clipped one."""
    sides: list[tuple[float, Alternative]] = []
    if p0 + effect <= 1:
        sides.append((p0 + effect, "two-sided" if two_sided else "greater"))
    if p0 - effect >= 0:
        sides.append((p0 - effect, "two-sided" if two_sided else "less"))
    if not sides:  # the effect overshoots both ends: the farther end is the deviation
        up = 1 - p0 >= p0
        one_sided: Alternative = "greater" if up else "less"
        sides.append((1.0 if up else 0.0, "two-sided" if two_sided else one_sided))
    return sides


def _normal_seed(p0: float, p1: float, alpha: float, power: float, two_sided: bool) -> int:
    z_a = float(norm.isf(alpha / 2 if two_sided else alpha))
    z_b = float(norm.isf(1 - power))
    spread = z_a * math.sqrt(p0 * (1 - p0)) + z_b * math.sqrt(p1 * (1 - p1))
    return max(1, math.ceil((spread / abs(p1 - p0)) ** 2))


def _smallest_n(p0: float, p1: float, alpha: float, power: float, alternative: Alternative) -> int:
    def ok(n: int) -> bool:
        return binomial_power(n, p0, p1, alpha, alternative) >= power

    seed = _normal_seed(p0, p1, alpha, power, alternative == "two-sided")
    hi = seed
    while not ok(hi):
        hi *= 2
        if hi > _MAX_N:
            raise ValueError(f"no sample up to {_MAX_N} detects p={p1} against p0={p0}")
    lo = max(0, seed // 2)
    while lo > 0 and ok(lo):
        lo //= 2
    while hi - lo > 1:  # invariant: not ok(lo) (or lo == 0), ok(hi)
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    best = hi
    for n in range(hi - 1, max(0, hi - _SCAN_BACK), -1):
        if ok(n):
            best = n
    return best


def sample_size(
    p0: float, min_effect: float, alpha: float, power: float = 0.95, two_sided: bool = True
) -> int:
    """Smallest ``n`` whose exact test at ``alpha`` detects a deviation of ``min_effect``.

    The deviation is absolute and taken on the harder side (the one needing more
    samples, usually the one nearer 0.5); a side that would leave [0, 1] is dropped.
    With ``p0`` of 0 or 1 a single contrary request is conclusive, so
    ``n = ceil(log(1 - power) / log(1 - min_effect))``, whatever ``alpha``.
    """
    _validate(p0, alpha, power)
    if not 0 < min_effect <= 1:
        raise ValueError(f"min_effect must be in (0, 1], got {min_effect}")
    if p0 in (0.0, 1.0):
        if min_effect >= 1:
            return 1
        return max(1, math.ceil(math.log(1 - power) / math.log(1 - min_effect)))
    return max(
        _smallest_n(p0, p1, alpha, power, alt)
        for p1, alt in _alternatives(p0, min_effect, two_sided)
    )


def _power_at_effect(p0: float, n: int, alpha: float, effect: float, two_sided: bool) -> float:
    return min(
        binomial_power(n, p0, p1, alpha, alt) for p1, alt in _alternatives(p0, effect, two_sided)
    )


def detectable_effect(
    p0: float, n: int, alpha: float, power: float = 0.95, two_sided: bool = True
) -> float:
    """Smallest absolute deviation from ``p0`` that ``n`` samples detect with ``power``.

    The inverse of :func:`sample_size`, for reporting honestly what a capped sample
    can see. Returns ``math.inf`` when no deviation at all is detectable that reliably.
    """
    _validate(p0, alpha, power)
    if n <= 0:
        return math.inf
    if p0 in (0.0, 1.0):
        return 1 - math.pow(1 - power, 1 / n)
    top = max(p0, 1 - p0)
    if _power_at_effect(p0, n, alpha, top, two_sided) < power:
        return math.inf
    lo, hi = 0.0, top
    while hi - lo > 1e-4:  # power is non-decreasing in the effect for a fixed test
        mid = (lo + hi) / 2
        if _power_at_effect(p0, n, alpha, mid, two_sided) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def latency_sample_size(
    tail_allowance: float, min_excess: float, alpha: float, power: float = 0.95
) -> int:
    """Samples of one class needed for its latency-band check to be not blind.

    The band check (:func:`meshchaos.check.latency_within`) rejects when the share of
    samples outside the band significantly exceeds ``tail_allowance`` (one-sided exact
    test). This is the ``n`` at which a true outside share of
    ``tail_allowance + min_excess`` is caught with ``power``. Divide by the class's
    expected share to get the number of requests.
    """
    _validate(tail_allowance, alpha, power)
    if not 0 < min_excess <= 1 - tail_allowance:
        raise ValueError(f"min_excess must be in (0, 1 - tail_allowance], got {min_excess}")
    p1 = tail_allowance + min_excess
    if tail_allowance == 0.0:
        return sample_size(0.0, min_excess, alpha, power)
    return _smallest_n(tail_allowance, p1, alpha, power, "greater")
