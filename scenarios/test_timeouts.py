"""Timeouts: route timeouts against slow hops, composed with Bookinfo's own app timeouts.

An injected delay is not counted against the route timeout (the fault filter runs
before the router), so ``delay 1.5 s + timeout 1 s`` on a fast upstream is a 200 at ~1.5 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from meshchaos import Chaos, Scenario, bookinfo, httpbin

pytestmark = [pytest.mark.timeouts, pytest.mark.integration]

# Latency-bound: high concurrency, but not so high that the Python apps queue (two
# xdist meshes share 2 cores), which would push latencies out of the oracle's bands.
# Slow requests (seconds each): a small fixed sample, all in flight at once.
SLOW: dict[str, Any] = {"concurrency": 32, "max_requests": 64, "min_requests": 64}
CASES = [
    # Istio's request-timeouts task: reviews v2 waits for a 2 s ratings delay -> page ~2 s.
    pytest.param(
        bookinfo("virtual-service-reviews-v2.yaml", "fault-ratings-delay-2s.yaml", **SLOW),
        id="ratings-delay-2s-reviews-v2-page-2s",
    ),
    # ... and a 0.5 s reviews timeout: 504 twice (productpage retries once) -> ~1 s error.
    pytest.param(
        bookinfo("fault-ratings-delay-2s.yaml", "timeout-reviews-0.5s.yaml", **SLOW),
        id="ratings-delay-2s-reviews-timeout-0.5s-error-1s",
    ),
    pytest.param(
        bookinfo("fault-ratings-delay-2s.yaml", "timeout-reviews-1s.yaml", **SLOW),
        id="ratings-delay-2s-reviews-timeout-1s-error-2s",
    ),
    pytest.param(
        httpbin("/delay/1", "timeout-httpbin-0.5s.yaml", **SLOW),
        id="httpbin-delay-1s-timeout-0.5s-504",
    ),
    pytest.param(
        httpbin("/get", "timeout-httpbin-1s-fault-delay-1.5s.yaml", **SLOW),
        id="fault-delay-1.5s-not-counted-timeout-1s-fast-upstream-200",
    ),
    pytest.param(
        httpbin("/delay/0.5", "timeout-httpbin-1s-fault-delay-1.5s.yaml", **SLOW),
        id="fault-delay-1.5s-timeout-1s-upstream-0.5s-200-at-2s",
    ),
    pytest.param(
        httpbin("/delay/1.2", "timeout-httpbin-1s-fault-delay-1.5s.yaml", **SLOW),
        id="fault-delay-1.5s-timeout-1s-upstream-1.2s-504-at-2.5s",
    ),
]


@pytest.mark.parametrize("scenario", CASES)
def test_timeouts(chaos: Chaos, scenario: Scenario) -> None:
    chaos.run(scenario)
