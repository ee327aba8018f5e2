"""The tests and intervals a comparison of two runs uses: Fisher's exact test, the Newcombe
interval for a difference of shares, the smallest detectable difference, and
order-statistic intervals for a quantile from a histogram."""

from __future__ import annotations

import math

from scipy import stats as sps

from meshchaos.report.histogram import Histogram, bin_edges
from meshchaos.stats.intervals import wilson

__all__ = ["fisher", "newcombe", "quantile_interval", "share_detectable", "z_score"]


def fisher(a: int, n1: int, b: int, n2: int) -> float:
    if (a == 0 and b == 0) or (a == n1 and b == n2):
        return 1.0
    _, p = sps.fisher_exact([[a, n1 - a], [b, n2 - b]])
    return float(min(1.0, p))


def newcombe(k1: int, n1: int, k2: int, n2: int, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p2 - p1 (method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    d = p2 - p1
    return (
        d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
        d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
    )


def z_score(p: float) -> float:
    return float(sps.norm.ppf(p))


def share_detectable(k1: int, n1: int, k2: int, n2: int, level: float, power: float) -> float:
    """Smallest share difference a two-sided test at ``level`` finds with ``power``."""
    pooled = (k1 + k2) / (n1 + n2)
    pooled = min(max(pooled, 1 / (n1 + n2)), 1 - 1 / (n1 + n2))
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return (z_score(1 - level / 2) + z_score(power)) * se


def quantile_interval(h: Histogram, q: float, confidence: float) -> tuple[float, float]:
    """Distribution-free interval for the ``q`` quantile: order statistics whose ranks
    come from Binomial(n, q), widened to the edges of the bins that hold them."""
    n = h.count
    tail = (1 - confidence) / 2
    lo_rank = int(sps.binom.ppf(tail, n, q))
    hi_rank = int(sps.binom.ppf(1 - tail, n, q)) + 1
    lo_rank, hi_rank = min(max(lo_rank, 1), n), min(max(hi_rank, 1), n)
    return bin_edges(h.bin_of_rank(lo_rank))[0], bin_edges(h.bin_of_rank(hi_rank))[1]
