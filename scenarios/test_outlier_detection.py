"""Outlier detection: a failing httpbin instance is ejected, then let back in.

httpbin-v1 runs 3 instances and httpbin-v-faulty (503 to everything) one, all behind
one route with retries off. With ``consecutive5xxErrors: 3`` the faulty instance is
ejected after a few 503s, so the 503 share stays far below its 1/4 share of hosts; how
far, and how many ejections the client sidecar counts, the oracle bounds from the
policy and the load's shape (requests, concurrency, duration). After
``baseEjectionTime`` the instance returns and fails again; back from an ejection it may
fail for a while before Envoy ejects it again, which the oracle bounds too.
"""

from __future__ import annotations

import pytest

from meshchaos import Chaos, RequestClass, matches

pytestmark = [pytest.mark.outlier_detection, pytest.mark.integration]

POLICIES = ("httpbin-all-instances", "destination-rule-httpbin-outlier")
EJECTIONS = ("outlier_detection.ejections_enforced_total",)
FAULTY = "httpbin-v-faulty"
# The policy's baseEjectionTime (2 s) and interval (0.5 s): the host is back within
# one of each once no request fails; the wait below allows twice that and a margin.
RETURN_DEADLINE = 2 * 2.0 + 2 * 0.5 + 3.0
# Both phases last a few seconds at most at the planned counts (httpbin serves ~6,000/s).
MAX_REQUESTS = 10_000


def _request(requests: int, duration: float) -> RequestClass:
    return RequestClass(
        path="/get",
        source="client",
        host="httpbin",
        port=8000,
        concurrency=8,
        requests=requests,
        duration=duration,
    )


def _phase(chaos: Chaos, requests: int, duration: float, *, returning: bool = False) -> None:
    """Predict, size, load and judge one phase of at least ``requests`` requests within
    ``duration``. The oracle's bounds depend on the load's shape, so when the plan asks
    for more requests, the phase is predicted again for that many."""
    ejected = [FAULTY] if returning else []
    request = _request(requests, duration)
    prediction = chaos.predict(request, ejected_before=ejected)
    sizing = chaos.size(prediction, max_requests=MAX_REQUESTS, min_requests=requests)
    if sizing.used > requests:
        request = _request(sizing.used, duration)
        prediction = chaos.predict(request, ejected_before=ejected)
        sizing = chaos.size(prediction, max_requests=MAX_REQUESTS, min_requests=sizing.used)
    observed = chaos.load(request, sizing, duration=duration, counters=EJECTIONS)
    chaos.expect(observed).to(matches(prediction), *chaos.counters_match(prediction, observed))


@pytest.mark.usefixtures("faulty_httpbin")
def test_faulty_instance_ejected_then_returns(chaos: Chaos) -> None:
    chaos.apply(*POLICIES)
    _phase(chaos, requests=2000, duration=20.0)
    chaos.wait_for_counter(
        "outlier_detection.ejections_active", 0, workloads=("client",), deadline=RETURN_DEADLINE
    )
    _phase(chaos, requests=400, duration=10.0, returning=True)
