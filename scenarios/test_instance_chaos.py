"""Instance chaos: kill one of two reviews-v1 instances while load is in flight.

The kill is set off by the load's own progress (after a number of completed requests)
and the load runs on past it, so the run always has requests before, around and after
the kill. The oracle says what each phase should look like (``predict_kill``): a killed
instance stays registered as an endpoint, so the callers' sidecars keep picking it and
the connection is refused.

- Through the gateway, Istio's default retry policy moves a refused connection to the
  live instance (``connect-failure`` with ``previous_hosts``), so after the kill the
  pages are as before; only the requests in flight at the kill may fail.
- Calling reviews directly with retries off (``attempts: 0``), the dead instance's picks
  fail with 503 after the kill, and LEAST_REQUEST even favours it (it fails at once, so
  it always looks least busy): between a quarter and three quarters of the requests.
"""

from __future__ import annotations

import pytest

from meshchaos import Chaos, Instances, RequestClass

pytestmark = [pytest.mark.instance_chaos, pytest.mark.integration]

KILLED = "reviews-v1"


@pytest.mark.usefixtures("two_reviews_v1")
@pytest.mark.parametrize(
    ("policies", "request_class", "before"),
    [
        pytest.param(
            ("virtual-service-all-v1",),
            RequestClass(concurrency=16),
            200,
            id="gateway-default-retries-hide-the-kill",
        ),
        pytest.param(
            ("virtual-service-all-v1", "retries-reviews-off"),
            RequestClass(path="/reviews/0", source="client", host="reviews", concurrency=16),
            1000,
            id="direct-retries-off-dead-host-picks-fail",
        ),
    ],
)
def test_kill_one_of_two_instances_under_load(
    chaos: Chaos, policies: tuple[str, ...], request_class: RequestClass, before: int
) -> None:
    chaos.apply(*policies)
    predicted = chaos.predict_kill(request_class, KILLED)
    first = chaos.size(predicted.before, max_requests=4000, min_requests=before).used
    sizing = chaos.size(predicted.after, max_requests=4000, min_requests=300)
    # The load goes on past the kill until the phase after it has its planned sample,
    # plus what settles around the kill (requests in flight are in neither phase).
    kill = chaos.kill(KILLED, 1, after=first, then=sizing.used + 2 * request_class.concurrency)
    observed = chaos.load(request_class, first + kill.then, triggers=[kill])
    chaos.expect(observed).to(*chaos.kill_checks(predicted, observed, kill.name))


def test_two_instances_fixture_scales_back(two_reviews_v1: Instances) -> None:
    """The layout the kill scenarios rely on: two live reviews-v1 instances."""
    assert two_reviews_v1.replicas(KILLED) == 2
