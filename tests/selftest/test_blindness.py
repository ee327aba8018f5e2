"""Blindness self-tests: for every family, apply one policy, tell the oracle another, and
require the very same checks the scenarios use to raise a clear PolicyDeviation.

A check that passes here is blind to the difference, and so would the scenario be.
These run against the real local mesh (the suite's session ``mesh`` fixture).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from meshchaos.check import ChecksFailed
from meshchaos.errors import PolicyDeviation
from meshchaos.mesh.base import Mesh
from meshchaos.scenario import Scenario, bookinfo, httpbin, mirror_checks, run_scenario

pytestmark = pytest.mark.integration

FLAKY = "/status/200:0.5,503:0.5"
SMALL = {"max_requests": 1500}
# (family, scenario applying one policy but predicting with another, a regex that must
# appear in the message: the class, then "expected <x>, observed <y>")
LIES = [
    pytest.param(
        httpbin(
            "/status/200",
            "fault-httpbin-abort-10pct-503.yaml",
            predict=("fault-httpbin-abort-20pct-503.yaml",),
            **SMALL,
        ),
        r"share of status:503: expected 0\.20*, observed 0\.[01]\d*",
        id="fault_injection-abort-10-told-20",
    ),
    pytest.param(
        httpbin(
            "/delay/1",
            "timeout-httpbin-0.5s.yaml",
            predict=("timeout-httpbin-1s.yaml",),
            concurrency=64,
            max_requests=64,
            min_requests=64,
        ),
        r"latency of status:504 within \[\d+ ms, [\d.]+ s\]: expected at most",
        id="timeouts-0.5s-told-1s",
    ),
    pytest.param(
        httpbin(
            FLAKY, "retries-httpbin-5xx-3.yaml", predict=("retries-httpbin-off.yaml",), **SMALL
        ),
        r"share of status:503: expected 0\.50*, observed 0\.0\d+",
        id="retries-3-told-0",
    ),
    pytest.param(
        bookinfo(
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-v1-90-v3-10.yaml",
            predict=("virtual-service-all-v1.yaml", "virtual-service-reviews-v1-50-v3-50.yaml"),
        ),
        r"share of reviews-v1: expected 0\.50*, observed 0\.[89]\d*",
        id="traffic_shifting-90-10-told-50-50",
    ),
    pytest.param(
        bookinfo(
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-test-v2.yaml",
            user="jason",
            predict=("virtual-service-all-v1.yaml",),
        ),
        r"share of reviews-v1: expected 1(\.0+)?, observed 0(\.0+)? ",
        id="routing-jason-v2-told-all-v1",
    ),
    pytest.param(
        httpbin(
            "/get",
            "httpbin-v1.yaml",
            "destination-rule-httpbin-circuit-breaker.yaml",
            predict=("httpbin-v1.yaml",),
            concurrency=20,
            max_requests=1000,
        ),
        r"status:503",
        id="circuit_breaking-pool-1-told-unlimited",
    ),
]


@pytest.mark.parametrize(("scenario", "message"), LIES)
def test_checks_see_the_lie(
    scenario: Scenario,
    message: str,
    mesh: Mesh,
    policy: Any,
    load: Any,
    record: Any,
    min_effect: float,
) -> None:
    with pytest.raises(PolicyDeviation) as info:
        run_scenario(
            scenario, mesh=mesh, policy=policy, load=load, record=record, min_effect=min_effect
        )
    text = str(info.value)
    assert text.startswith("policy deviation:"), text
    assert re.search(message, text), text


def test_mirroring_10_told_50(
    mesh: Mesh, policy: Any, load: Any, record: Any, min_effect: float
) -> None:
    scenario = httpbin(
        "/get",
        "mirror-httpbin-v2-10pct.yaml",
        predict=("mirror-httpbin-v2-50pct.yaml",),
        max_requests=1500,
    )
    with pytest.raises(ChecksFailed) as info:
        run_scenario(
            scenario,
            mesh=mesh,
            policy=policy,
            load=load,
            record=record,
            min_effect=min_effect,
            extra_checks=mirror_checks(mesh, record),
        )
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


def test_outlier_detection_told_absent(
    mesh: Mesh, policy: Any, load: Any, record: Any, instances: Any
) -> None:
    """Outlier detection applied; the check of 'no ejection' (503s at the faulty host's
    share) must see that far fewer 503s arrive."""
    from meshchaos.check import expect, status_share

    instances.scale("httpbin-v1", 3)
    instances.scale("httpbin-v-faulty", 1)
    policy("httpbin-all-instances.yaml", "destination-rule-httpbin-outlier.yaml")
    faulty_share = 1 / sum(
        instances.replicas(w) for w in ("httpbin-v1", "httpbin-v2", "httpbin-v-faulty")
    )
    result = load.client("http://httpbin:8000/get", requests=1000, concurrency=8, duration=15.0)
    with pytest.raises(PolicyDeviation) as info:
        expect(result).to(status_share(503, equals=faulty_share))
    assert re.search(r"share of status.503: expected 0\.20*, observed 0\.[01]", str(info.value)), (
        str(info.value)
    )


def test_instance_chaos_errors_told_none(
    mesh: Mesh, policy: Any, load: Any, record: Any, instances: Any
) -> None:
    """Retries off and an instance killed mid-run: 'no errors' must fail."""
    from meshchaos.check import expect, no_errors

    instances.scale("reviews-v1", 2)
    policy("virtual-service-all-v1.yaml", "retries-reviews-off.yaml")
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: box.update(
            r=load.client(
                "http://reviews:9080/reviews/0", requests=4000, concurrency=16, duration=4.0
            )
        )
    )
    thread.start()
    time.sleep(1.0)  # the kill is the event under test, at a fixed point of the run
    instances.kill("reviews-v1", 1)
    thread.join(timeout=60)
    with pytest.raises(PolicyDeviation) as info:
        expect(box["r"]).to(no_errors())
    assert "no errors" in str(info.value) or "5xx" in str(info.value), str(info.value)
