"""Outlier detection: a failing httpbin instance is ejected, then let back in.

httpbin-v1 runs 3 instances and httpbin-v-faulty (503 to everything) one, all behind
one route with retries off. With ``consecutive5xxErrors: 3`` the faulty instance is
ejected after a handful of 503s, so the 503 share stays far below its 1/5 share of
hosts, and the client sidecar's ``ejections_enforced_total`` grows. After
``baseEjectionTime`` it returns and fails (and is ejected) again.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from meshchaos.errors import PolicyDeviation
from meshchaos.mesh.base import Mesh
from meshchaos.scenario import mesh_counters

pytestmark = [pytest.mark.outlier_detection, pytest.mark.integration]

URL = "http://httpbin:8000/get"
CONSECUTIVE = 3
BASE_EJECTION = 2.0
INTERVAL = 0.5
CONCURRENCY = 8


def ejections(mesh: Mesh) -> dict[str, int]:
    return mesh_counters(
        mesh,
        ["outlier_detection.ejections_enforced_total", "outlier_detection.ejections_active"],
        ["client"],
    )


def wait_unejected(mesh: Mesh, deadline: float) -> float:
    """Wait (bounded) until no host is ejected; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if ejections(mesh)["outlier_detection.ejections_active"] == 0:
            return time.monotonic() - start
        time.sleep(0.1)  # polling the proxy's own state, with a deadline
    raise PolicyDeviation(
        f"faulty host still ejected after {deadline:.1f} s; expected it back after "
        f"baseEjectionTime {BASE_EJECTION} s + interval {INTERVAL} s"
    )


@pytest.fixture
def faulty_httpbin(instances: Any) -> None:
    instances.scale("httpbin-v1", 3)
    instances.scale("httpbin-v-faulty", 1)


@pytest.mark.usefixtures("faulty_httpbin")
def test_faulty_instance_ejected_then_returns(
    mesh: Mesh, policy: Any, load: Any, record: Any
) -> None:
    from meshchaos.check import expect, status_share

    policy("httpbin-all-instances.yaml", "destination-rule-httpbin-outlier.yaml")
    before = ejections(mesh)
    first = load.client(URL, requests=2000, concurrency=CONCURRENCY, duration=20.0)
    mid = ejections(mesh)
    ejected = (
        mid["outlier_detection.ejections_enforced_total"]
        - before["outlier_detection.ejections_enforced_total"]
    )
    # Each ejection lets through at most CONSECUTIVE failures plus what was in flight;
    # one more allowance for the first detection.
    bound = min(1.0, (ejected + 1) * (CONSECUTIVE + CONCURRENCY) / max(1, first.count))
    record.set("ejections", ejected)
    record.set("bound_503", bound)
    if ejected < 1:
        raise PolicyDeviation(
            f"outlier detection: expected the faulty instance to be ejected "
            f"(ejections_enforced_total > 0), observed {ejected}; 503 share "
            f"{first.share('status:503'):.3f} of {first.count}"
        )
    expect(first, evidence={"ejections": ejected}).to(
        status_share(503, between=(0.0, bound)),
    )
    waited = wait_unejected(mesh, deadline=BASE_EJECTION * 2 + INTERVAL * 2 + 3.0)
    record.set("returned_after", waited)
    second = load.client(URL, requests=400, concurrency=CONCURRENCY, duration=10.0)
    after = ejections(mesh)
    again = (
        after["outlier_detection.ejections_enforced_total"]
        - mid["outlier_detection.ejections_enforced_total"]
    )
    record.set("ejections_after_return", again)
    if second.status_counts()[503] == 0 or again < 1:
        raise PolicyDeviation(
            "outlier detection: expected the faulty instance back in rotation after "
            f"baseEjectionTime (some 503s, then a new ejection); observed "
            f"{second.status_counts()[503]} 503s and {again} new ejections"
        )
