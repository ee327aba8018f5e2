"""Circuit breaking: a one-connection pool on httpbin (Istio's circuit-breaking task).

At concurrency 1 nothing overflows; from 3 on, some requests are refused at once with
503 and ``x-envoy-overloaded``, and the client sidecar's ``upstream_rq_pending_overflow``
counter equals the number of overloaded responses the client saw. How many overflow is
only bounded (Istio's "leeway": two proxy workers, each with its own view), so the
oracle gives bounds, not a point.
"""

from __future__ import annotations

import pytest

from meshchaos import Chaos, Scenario, httpbin

pytestmark = [pytest.mark.circuit_breaking, pytest.mark.integration]

CB = ("httpbin-v1.yaml", "destination-rule-httpbin-circuit-breaker.yaml")
CASES = [
    pytest.param(
        httpbin("/get", *CB, concurrency=1, max_requests=300, min_requests=300),
        id="pool-1-concurrency-1-no-overflow",
    ),
    pytest.param(httpbin("/get", *CB, concurrency=3), id="pool-1-concurrency-3-overflow"),
    pytest.param(httpbin("/get", *CB, concurrency=20), id="pool-1-concurrency-20-overflow"),
]


@pytest.mark.parametrize("scenario", CASES)
def test_circuit_breaking(chaos: Chaos, scenario: Scenario) -> None:
    chaos.run(scenario)
