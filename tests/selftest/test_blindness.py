"""Blindness self-tests: for every family, apply one policy, tell the oracle another, and
require the very same checks the scenarios use to raise a clear PolicyDeviation.

A check that passes here is blind to the difference, and so would the scenario be.
These run against the real local mesh (the suite's session ``mesh`` fixture).
"""

from __future__ import annotations

import re

import pytest

from meshchaos import (
    Chaos,
    ChecksFailed,
    Mirror,
    PolicyDeviation,
    RequestClass,
    Scenario,
    bookinfo,
    httpbin,
    matches,
)

pytestmark = pytest.mark.integration

FLAKY = "/status/200:0.5,503:0.5"
SMALL: dict[str, int] = {"max_requests": 1500}
# (family, scenario applying one policy but predicting with another, a regex that must
# appear in the message: the class, then "expected <x>, observed <y>")
LIES = [
    pytest.param(
        httpbin(
            "/status/200",
            "fault-httpbin-abort-10pct-503.yaml",
            told=("fault-httpbin-abort-20pct-503.yaml",),
            **SMALL,
        ),
        r"share of status:503: expected 0\.20*, observed 0\.[01]\d*",
        id="fault_injection-abort-10-told-20",
    ),
    pytest.param(
        httpbin(
            "/delay/1",
            "timeout-httpbin-0.5s.yaml",
            told=("timeout-httpbin-1s.yaml",),
            concurrency=64,
            max_requests=64,
            min_requests=64,
        ),
        r"latency of status:504 within \[\d+ ms, [\d.]+ s\]: expected at most",
        id="timeouts-0.5s-told-1s",
    ),
    pytest.param(
        httpbin(FLAKY, "retries-httpbin-5xx-3.yaml", told=("retries-httpbin-off.yaml",), **SMALL),
        r"share of status:503: expected 0\.50*, observed 0\.0\d+",
        id="retries-3-told-0",
    ),
    pytest.param(
        bookinfo(
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-v1-90-v3-10.yaml",
            told=("virtual-service-all-v1.yaml", "virtual-service-reviews-v1-50-v3-50.yaml"),
        ),
        r"share of reviews-v1: expected 0\.50*, observed 0\.[89]\d*",
        id="traffic_shifting-90-10-told-50-50",
    ),
    pytest.param(
        bookinfo(
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-test-v2.yaml",
            user="jason",
            told=("virtual-service-all-v1.yaml",),
        ),
        r"share of reviews-v1: expected 1(\.0+)?, observed 0(\.0+)? ",
        id="routing-jason-v2-told-all-v1",
    ),
    pytest.param(
        httpbin(
            "/get",
            "httpbin-v1.yaml",
            "destination-rule-httpbin-circuit-breaker.yaml",
            told=("httpbin-v1.yaml",),
            concurrency=20,
            max_requests=1000,
        ),
        r"status:503",
        id="circuit_breaking-pool-1-told-unlimited",
    ),
]


@pytest.mark.parametrize(("scenario", "message"), LIES)
def test_checks_see_the_lie(chaos: Chaos, scenario: Scenario, message: str) -> None:
    with pytest.raises(PolicyDeviation) as info:
        chaos.run(scenario)
    text = str(info.value)
    assert text.startswith("policy deviation:"), text
    assert re.search(message, text), text


def test_mirroring_10_told_50(chaos: Chaos) -> None:
    scenario = httpbin(
        "/get",
        "mirror-httpbin-v2-10pct.yaml",
        told=("mirror-httpbin-v2-50pct.yaml",),
        max_requests=1500,
        mirror=Mirror("httpbin-v1", "httpbin-v2"),
    )
    with pytest.raises(ChecksFailed) as info:
        chaos.run(scenario)
    # Judged on the report itself, not on the rendered text: the mirror check must be
    # among the failures, told 0.5 per request and seeing the applied 10 % (far below).
    message = str(info.value)
    assert message.startswith("policy deviation:"), message
    mirrored = [
        o
        for o in info.value.report.failures
        if o.name == "proxy counter httpbin-v2 inbound requests (mirrored)"
    ]
    assert len(mirrored) == 1, message
    assert mirrored[0].expected.startswith("0.500 per request"), message
    assert float(mirrored[0].observed.split()[0]) < 0.3, message


@pytest.mark.usefixtures("faulty_httpbin")
def test_outlier_detection_told_absent(chaos: Chaos) -> None:
    """Outlier detection applied, the oracle told there is none: the faulty host's full
    share of 503s is predicted, and far fewer arrive."""
    chaos.apply("httpbin-all-instances.yaml", "destination-rule-httpbin-outlier.yaml")
    request = RequestClass(
        path="/get", source="client", host="httpbin", port=8000, concurrency=8, requests=1000
    )
    prediction = chaos.predict(request, told=("httpbin-all-instances.yaml",))
    observed = chaos.load(request, 1000, duration=15.0)
    with pytest.raises(PolicyDeviation) as info:
        chaos.expect(observed).to(matches(prediction))
    text = str(info.value)
    assert re.search(r"share of status.503: expected 0\.20*, observed 0\.[01]", text), text


@pytest.mark.usefixtures("two_reviews_v1")
def test_instance_chaos_told_retries_hide_the_kill(chaos: Chaos) -> None:
    """Retries off and an instance killed mid-run, the oracle told the default policy
    (which retries a refused connection): the 503s after the kill must fail the check."""
    chaos.apply("virtual-service-all-v1.yaml", "retries-reviews-off.yaml")
    request = RequestClass(path="/reviews/0", source="client", host="reviews", concurrency=16)
    told = chaos.predict_kill(request, "reviews-v1", told=("virtual-service-all-v1.yaml",))
    kill = chaos.kill("reviews-v1", 1, after=500, then=1000)
    observed = chaos.load(request, 1500, triggers=[kill])
    with pytest.raises(ChecksFailed) as info:
        chaos.expect(observed).to(*chaos.kill_checks(told, observed, kill.name))
    failed = {o.name for o in info.value.report.failures}
    assert "share of status:503 [after the kill]" in failed, str(info.value)
    assert not any(name.endswith("[before the kill]") for name in failed), str(info.value)
