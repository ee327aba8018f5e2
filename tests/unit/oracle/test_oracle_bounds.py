"""Bounds for connection pools and outlier detection (docs/ISTIO_SEMANTICS.md §7, §10)."""

from __future__ import annotations

import dataclasses

import pytest
from oracle_helpers import check

from meshchaos.istio.parse import load_text
from meshchaos.oracle import BOOKINFO, RequestClass, Timing, predict
from meshchaos.oracle._bounds import ejection_cycles

POOL = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
"""


def load(c: int, n: int | None = None) -> RequestClass:
    return RequestClass(
        path="/get", source="client", host="httpbin", port=8000, concurrency=c, requests=n
    )


def test_pool_at_concurrency_one_never_overflows() -> None:
    p = predict(load_text(POOL), load(1))
    check(p, "status:200", 1.0)
    assert p.share("status:503") is None
    assert any("overflow share exactly 0" in line for line in p.reasoning)


def test_pool_at_concurrency_three_overflows_some() -> None:
    p = predict(load_text(POOL), load(3, 100))
    share = p.share("status:503")
    assert share is not None
    assert not share.is_exact
    lo, hi = share.bounds
    # two worker threads may each admit up to capacity 2: no guaranteed overflow at c=3
    assert lo == pytest.approx(0.0)
    assert hi == pytest.approx(0.99)
    assert 0 < share.probability < 1
    assert share.probability == pytest.approx(1 / 3)
    assert sum(o.probability for o in p.outcomes) == pytest.approx(1.0)


def test_pool_lower_bound_with_one_worker() -> None:
    p = predict(load_text(POOL), load(6), timing=Timing(proxy_workers=1))
    lo, hi = p.share("status:503").bounds  # type: ignore[union-attr]
    assert lo == pytest.approx(4 / 6)  # (c - capacity) / c
    assert hi == pytest.approx(1.0)
    ok_lo, ok_hi = p.share("status:200").bounds  # type: ignore[union-attr]
    assert (ok_lo, ok_hi) == (pytest.approx(0.0), pytest.approx(2 / 6))


OUTLIER = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: %d
"""

ONE_BAD = BOOKINFO.scaled(**{"httpbin-v2": 0, "httpbin-v-faulty": 1})


def test_outlier_bound_counts_ejection_cycles() -> None:
    req = RequestClass(
        path="/get", source="client", host="httpbin", port=8000, requests=1000, duration=60.0
    )
    p = predict(load_text(OUTLIER % 100), req, ONE_BAD)
    lo, hi = p.share("status:503").bounds  # type: ignore[union-attr]
    # ejected after 2 consecutive 5xx; back after 30 s; again after 60 s more: 2 cycles
    assert (lo, hi) == (pytest.approx(2 / 1000), pytest.approx(4 / 1000))
    assert p.share("status:200").bounds[1] == pytest.approx(1 - 2 / 1000)  # type: ignore[union-attr]
    # The ejections themselves: at least the first (1000 >= 10 k n), at most one a cycle.
    assert p.counter_bounds == {"outlier_detection.ejections_enforced_total": (1, 2)}


def test_outlier_gives_no_certain_ejection_on_a_short_run() -> None:
    req = RequestClass(
        path="/get", source="client", host="httpbin", port=8000, requests=30, duration=5.0
    )
    p = predict(load_text(OUTLIER % 100), req, ONE_BAD)
    assert p.counter_bounds == {"outlier_detection.ejections_enforced_total": (0, 1)}


def test_outlier_never_ejects_below_max_ejection_percent() -> None:
    req = RequestClass(path="/get", source="client", host="httpbin", port=8000, requests=1000)
    p = predict(load_text(OUTLIER % 10), req, ONE_BAD)
    check(p, "status:503", 0.5)  # 1 of 2 hosts; 10 % < 50 %: never ejected
    assert p.share("status:503").is_exact  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("duration", "cycles"), [(None, 1), (29.0, 1), (30.0, 2), (89.0, 2), (90.0, 3)]
)
def test_ejection_cycles(duration: float | None, cycles: int) -> None:
    assert ejection_cycles(30.0, duration) == cycles


def test_outlier_host_back_from_an_ejection_is_bounded_by_no_ejection() -> None:
    req = RequestClass(
        path="/get", source="client", host="httpbin", port=8000, requests=1000, duration=60.0
    )
    returning = dataclasses.replace(ONE_BAD, ejected_before=frozenset({"httpbin-v-faulty"}))
    p = predict(load_text(OUTLIER % 100), req, returning)
    lo, hi = p.share("status:503").bounds  # type: ignore[union-attr]
    assert (lo, hi) == (pytest.approx(2 / 1000), pytest.approx(0.5))  # 1 of 2 hosts
    assert p.counter_bounds == {"outlier_detection.ejections_enforced_total": (0, 2)}


SUBSET_PORT_ENTRY = (
    POOL
    + """  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 8000}
        loadBalancer: {simple: ROUND_ROBIN}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
"""
)


def test_subset_port_entry_drops_the_top_level_pool() -> None:
    """§7: the subset's own port entry replaces the whole policy, pool included, as the
    mesh's cluster shows (no circuit breaker): no overflow bounds."""
    p = predict(load_text(SUBSET_PORT_ENTRY), load(6, 100))
    check(p, "status:200", 1.0)
    assert p.share("status:503") is None
