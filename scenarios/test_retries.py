"""Retries: attempts x retryOn against a flaky upstream, Istio's default policy, aborts
(never retried), per-try timeouts, and the ratings v-faulty variant.

httpbin's ``/status/200:0.5,503:0.5`` fails half the time on its own, so the retry
policy under test is the only policy on that hop.
"""

from __future__ import annotations

import pytest

from meshchaos import Chaos, Scenario, bookinfo, httpbin

pytestmark = [pytest.mark.retries, pytest.mark.integration]

FLAKY = "/status/200:0.5,503:0.5"
CASES = [
    pytest.param(httpbin(FLAKY, "retries-httpbin-off.yaml"), id="flaky-5xx-0-attempts-503-half"),
    pytest.param(
        httpbin(FLAKY, "retries-httpbin-5xx-1.yaml"), id="flaky-5xx-1-attempt-503-quarter"
    ),
    pytest.param(
        httpbin(FLAKY, "retries-httpbin-5xx-3.yaml"), id="flaky-5xx-3-attempts-503-1-16th"
    ),
    pytest.param(
        httpbin(FLAKY, "retries-httpbin-gateway-error-3.yaml"),
        id="flaky-gateway-error-3-attempts-503-1-16th",
    ),
    # Istio's default policy retries connect failures and refused streams, not a 503 reply.
    pytest.param(httpbin(FLAKY, "httpbin-v1.yaml"), id="flaky-istio-default-policy-503-half"),
    pytest.param(
        httpbin("/status/200", "retries-httpbin-5xx-3-abort-50pct.yaml"),
        id="abort-50pct-not-retried-under-5xx-3",
    ),
    pytest.param(
        httpbin(
            "/delay/0.5",
            "retries-httpbin-per-try-200ms.yaml",
            concurrency=64,
            max_requests=256,
            min_requests=64,
        ),
        id="per-try-timeout-200ms-2-retries-504-at-0.6s",
    ),
]


@pytest.mark.parametrize("scenario", CASES)
def test_retries(chaos: Chaos, scenario: Scenario) -> None:
    chaos.run(scenario)


FAULTY = [
    pytest.param(
        bookinfo("virtual-service-reviews-v2.yaml", "ratings-v-faulty.yaml"),
        id="ratings-v-faulty-default-policy-unavailable-half",
    ),
    pytest.param(
        bookinfo("virtual-service-reviews-v2.yaml", "retries-ratings-v-faulty-5xx-3.yaml"),
        id="ratings-v-faulty-5xx-3-attempts-unavailable-1-16th",
    ),
]


@pytest.mark.parametrize("scenario", FAULTY)
@pytest.mark.usefixtures("faulty_ratings")
def test_retries_ratings_v_faulty(chaos: Chaos, scenario: Scenario) -> None:
    chaos.run(scenario)
