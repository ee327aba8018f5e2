"""The verdict is neither flaky nor blind: false-alarm rate and power, by simulation.

Synthetic runs are drawn from a known truth with a fixed seed and judged by the real
``expect(...).to(matches(...))`` path, Holm and all.
"""

from __future__ import annotations

import math

import numpy as np

from meshchaos.check import Check, expect, matches
from meshchaos.errors import PolicyDeviation
from meshchaos.load.result import LoadResult, Sample
from meshchaos.oracle.prediction import LatencyBand, OutcomeShare, Prediction, RequestClass
from meshchaos.stats import latency_sample_size, sample_size

BAND = LatencyBand(0.2, 0.3)


def prediction(shares: dict[str, float]) -> Prediction:
    return Prediction(RequestClass(), tuple(OutcomeShare(c, p, BAND) for c, p in shares.items()))


# Traffic shifting 50/30/20, and a 10% fault abort.
SHIFT = prediction({"reviews-v1": 0.5, "reviews-v2-black": 0.3, "reviews-v3-red": 0.2})
ABORT = prediction({"reviews-v1": 0.9, "status:503": 0.1})


def draw(rng: np.random.Generator, n: int, shares: dict[str, float], outside: float) -> LoadResult:
    """A run of ``n`` requests with classes drawn by ``shares``; a fraction ``outside``
    of the latencies fall outside the band (at ``outside = tail_allowance``, the
    worst case a correct system may show)."""
    names = list(shares)
    classes = rng.choice(len(names), size=n, p=list(shares.values())).tolist()
    latencies = np.where(
        rng.random(n) < outside, BAND.high + 0.5, rng.uniform(BAND.low, BAND.high, size=n)
    ).tolist()
    samples = [Sample(0.0, lat, 200, names[c]) for c, lat in zip(classes, latencies, strict=True)]
    return LoadResult("synthetic", samples, 1.0, 1)


def rejects(result: LoadResult, check: Check, alpha: float) -> bool:
    try:
        expect(result).to(check, alpha=alpha)
    except PolicyDeviation:
        return True
    return False


def test_false_alarm_rate_is_at_most_alpha() -> None:
    # alpha 0.05 rather than the run's 0.01 so that a test running at twice its
    # nominal level would show (about 0.10 against a bound of 0.065).
    alpha, runs = 0.05, 2000
    truth = {"reviews-v1": 0.5, "reviews-v2-black": 0.3, "reviews-v3-red": 0.2}
    check = matches(SHIFT, tail_allowance=0.01)
    rng = np.random.default_rng(20240611)
    alarms = sum(rejects(draw(rng, 100, truth, 0.01), check, alpha) for _ in range(runs))
    se = math.sqrt(alpha * (1 - alpha) / runs)
    assert alarms / runs <= alpha + 3 * se, f"{alarms}/{runs} correct runs failed"


def test_share_deviation_is_caught_at_the_planned_size() -> None:
    # Plan for a 5-point deviation of the 10% abort at the run's alpha, Bonferroni
    # over the family (conservative for Holm); the truth aborts 15%.
    alpha, runs = 0.01, 100
    check = matches(ABORT)
    n = sample_size(0.1, 0.05, alpha=alpha / len(check.leaves()), power=0.95)
    rng = np.random.default_rng(7)
    truth = {"reviews-v1": 0.85, "status:503": 0.15}
    caught = sum(rejects(draw(rng, n, truth, 0.0), check, alpha) for _ in range(runs))
    assert caught / runs >= 0.90, f"only {caught}/{runs} shifted runs caught at n={n}"


def test_latency_tail_is_caught_at_its_planned_size() -> None:
    # Shares exactly right, but 5% of every class outside its band where 1% is allowed.
    alpha, runs = 0.01, 40
    check = matches(SHIFT, tail_allowance=0.01)
    per_class = latency_sample_size(0.01, 0.04, alpha=alpha / len(check.leaves()))
    n = math.ceil(per_class / 0.2)  # the rarest class must reach per_class samples
    truth = {"reviews-v1": 0.5, "reviews-v2-black": 0.3, "reviews-v3-red": 0.2}
    rng = np.random.default_rng(11)
    caught = sum(rejects(draw(rng, n, truth, 0.05), check, alpha) for _ in range(runs))
    assert caught / runs >= 0.90, f"only {caught}/{runs} slow runs caught at n={n}"
