"""Sample sizing: known values, monotonicity, and agreement with exact power."""

from __future__ import annotations

import math

import pytest

from meshchaos.stats import (
    binomial_power,
    detectable_effect,
    latency_sample_size,
    sample_size,
)


def test_known_value_close_to_the_normal_approximation() -> None:
    # Normal approximation for p0=0.5, effect 0.05, alpha 0.05, power 0.8: 783.
    n = sample_size(0.5, 0.05, alpha=0.05, power=0.8)
    assert 770 <= n <= 800


def test_returned_n_reaches_the_power_and_is_nearly_minimal() -> None:
    n = sample_size(0.3, 0.05, alpha=0.001, power=0.95)
    assert (
        min(
            binomial_power(n, 0.3, 0.35, 0.001, "two-sided"),
            binomial_power(n, 0.3, 0.25, 0.001, "two-sided"),
        )
        >= 0.95
    )
    # Well below n, the power is clearly short (the sawtooth is a few percent wide).
    assert binomial_power(int(n * 0.95), 0.3, 0.35, 0.001, "two-sided") < 0.95


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ({"min_effect": 0.10}, {"min_effect": 0.05}),
        ({"alpha": 0.05}, {"alpha": 0.001}),
        ({"power": 0.8}, {"power": 0.99}),
    ],
)
def test_monotone_in_effect_alpha_and_power(
    smaller: dict[str, float], larger: dict[str, float]
) -> None:
    base = {"p0": 0.5, "min_effect": 0.05, "alpha": 0.01, "power": 0.95}
    assert sample_size(**{**base, **smaller}) < sample_size(**{**base, **larger})  # type: ignore[arg-type]


def test_harder_side_is_nearer_one_half() -> None:
    # Around 0.1 the upward deviation (variance grows) needs the most samples.
    both = sample_size(0.1, 0.05, alpha=0.01)
    assert both >= sample_size(0.9, 0.05, alpha=0.01) - 5  # symmetric
    assert both > sample_size(0.02, 0.05, alpha=0.01)


def test_one_sided_needs_fewer() -> None:
    assert sample_size(0.5, 0.05, 0.01, two_sided=False) < sample_size(0.5, 0.05, 0.01)


@pytest.mark.parametrize("p0", [0.0, 1.0])
def test_certain_outcome_closed_form(p0: float) -> None:
    # (1 - 0.05)^n <= 0.05  =>  n = ceil(log 0.05 / log 0.95) = 59
    assert sample_size(p0, 0.05, alpha=0.001, power=0.95) == 59
    assert binomial_power(59, p0, abs(p0 - 0.05), 0.001, "two-sided") >= 0.95


def test_effect_overshooting_the_range_is_clipped() -> None:
    assert sample_size(0.5, 1.0, 0.01) >= 1
    assert sample_size(0.3, 0.9, 0.01) <= 10


def test_detectable_effect_inverts_sample_size() -> None:
    n = sample_size(0.25, 0.05, alpha=0.001)
    effect = detectable_effect(0.25, n, alpha=0.001)
    assert effect == pytest.approx(0.05, abs=0.004)
    assert detectable_effect(0.25, n // 4, alpha=0.001) > 0.09  # quarter n: about double


def test_detectable_effect_edges() -> None:
    assert detectable_effect(0.0, 59, alpha=0.01) == pytest.approx(1 - 0.05 ** (1 / 59))
    assert detectable_effect(0.5, 0, alpha=0.01) == math.inf
    assert detectable_effect(0.5, 3, alpha=0.001) == math.inf  # three requests prove nothing


def test_latency_sample_size() -> None:
    n = latency_sample_size(0.01, 0.04, alpha=0.001, power=0.95)
    assert binomial_power(n, 0.01, 0.05, 0.001, "greater") >= 0.95
    assert binomial_power(n - 60, 0.01, 0.05, 0.001, "greater") < 0.95
    assert latency_sample_size(0.0, 0.05, alpha=0.001) == 59


def test_validation() -> None:
    with pytest.raises(ValueError, match="min_effect"):
        sample_size(0.5, 0.0, 0.01)
    with pytest.raises(ValueError, match="alpha"):
        sample_size(0.5, 0.05, 0.0)
    with pytest.raises(ValueError, match="min_excess"):
        latency_sample_size(0.01, 0.995, 0.01)
