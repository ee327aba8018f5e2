"""Checks carry their facts as numbers too (for the run record), beside the text."""

from __future__ import annotations

import pytest

from meshchaos.check import counter_between, counter_matches, p99_below, share
from meshchaos.load import LoadResult
from meshchaos.load.result import Sample


def _result(n_a: int, n_b: int, latency: float = 0.01) -> LoadResult:
    samples = [Sample(i * 0.01, latency, 200, "a") for i in range(n_a)]
    samples += [Sample(i * 0.01, latency, 503, "b") for i in range(n_b)]
    return LoadResult("http://x", samples, 1.0, 1)


def test_share_has_counts_expectation_and_interval() -> None:
    out = share("b", equals=0.25).evaluate(_result(75, 25), 0.05)
    assert (out.k, out.n, out.expected_low, out.expected_high) == (25, 100, 0.25, 0.25)
    assert out.interval_low is not None
    assert out.interval_high is not None
    assert out.interval_low < 0.25 < out.interval_high
    assert out.observed == "0.250 (25/100)"  # the text stays as it was


def test_between_and_latency_and_counters() -> None:
    out = share("b", between=(0.1, 0.3)).evaluate(_result(75, 25), 0.05)
    assert (out.expected_low, out.expected_high) == (0.1, 0.3)
    lat = p99_below(0.005).evaluate(_result(10, 0), 0.05)
    assert (lat.k, lat.n, lat.expected_high) == (10, 10, pytest.approx(0.01))
    cm = counter_matches("x", 25, 0.25, 100).evaluate(_result(1, 0), 0.05)
    assert (cm.k, cm.n, cm.expected_low) == (25, 100, 0.25)
    cb = counter_between("y", 3, 1, 5).evaluate(_result(1, 0), 0.05)
    assert (cb.k, cb.expected_low, cb.expected_high) == (3, 1.0, 5.0)
    assert cb.to_dict()["k"] == 3
