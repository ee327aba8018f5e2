"""Killed instances that are still registered: what the retry policy makes of them."""

from __future__ import annotations

import pytest
from oracle_helpers import policy

from meshchaos.oracle import BOOKINFO, RequestClass
from meshchaos.oracle.kill import predict_kill, split_workload

ALL_V1 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""
RETRIES_OFF = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
    retries: {attempts: 0}
"""
TWO_V1 = BOOKINFO.scaled(**{"reviews-v1": 2})
DIRECT = RequestClass(path="/reviews/0", source="client", host="reviews", port=9080)


def test_default_retries_move_a_refused_connection_to_the_live_host() -> None:
    # One request at a time: hosts are picked uniformly, and the retry redraws the dead
    # host away with previous_hosts (up to 5 redraws), so a page fails only when every
    # try of both of productpage's attempts ends on the dead host.
    kp = predict_kill(policy(ALL_V1), RequestClass(), TWO_V1, workload="reviews-v1")
    assert kp.before.classes() == ["reviews-v1"]
    after = {o.outcome: o.probability for o in kp.after.outcomes}
    assert after["reviews-v1"] > 0.999
    assert kp.after_failure_bound < 1e-3
    assert kp.in_flight == 1
    assert any("connection refused" in line for line in kp.after.reasoning)


def test_without_retries_the_dead_host_share_fails_with_503() -> None:
    kp = predict_kill(policy(RETRIES_OFF), DIRECT, TWO_V1, workload="reviews-v1")
    after = {o.outcome: o for o in kp.after.outcomes}
    assert after["status:503"].probability == pytest.approx(0.5)
    assert after["status:503"].is_exact  # one at a time: a uniform pick


def test_least_request_favours_the_dead_host_under_concurrent_load() -> None:
    request = RequestClass(
        path="/reviews/0", source="client", host="reviews", port=9080, concurrency=16
    )
    kp = predict_kill(policy(RETRIES_OFF), request, TWO_V1, workload="reviews-v1")
    failed = next(o for o in kp.after.outcomes if o.outcome == "status:503")
    # Power of two choices over two hosts: [1/4, 3/4] (docs/ISTIO_SEMANTICS.md §7).
    assert failed.bounds == pytest.approx((0.25, 0.75))
    assert kp.after_failure_bound == pytest.approx(0.75)
    assert kp.in_flight == 16


def test_kill_needs_a_running_instance_and_a_known_workload() -> None:
    with pytest.raises(ValueError, match="cannot kill 1 of the 0 running instances"):
        BOOKINFO.scaled(**{"reviews-v1": 0}).with_killed("reviews", "v1")
    with pytest.raises(ValueError, match="unknown workload 'reviews-v9'"):
        split_workload(BOOKINFO, "reviews-v9")
    assert split_workload(BOOKINFO, "ratings-v-faulty") == ("ratings", "v-faulty")
