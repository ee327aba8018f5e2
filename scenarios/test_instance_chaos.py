"""Instance chaos: kill one of two reviews-v1 instances in the middle of a load run.

Through the gateway, Istio's default retry policy (connect-failure, refused-stream,
with ``previous_hosts``) plus productpage's own retry hides the dead instance: at most
the requests in flight at the moment of the kill can show the reviews error.
Calling reviews directly with retries off (``attempts: 0``),
errors appear, and only after the kill.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from meshchaos.errors import PolicyDeviation
from meshchaos.load import LoadResult
from meshchaos.mesh.base import Mesh
from meshchaos.outcomes import Bookinfo

pytestmark = [pytest.mark.instance_chaos, pytest.mark.integration]

KILL_AFTER = 1.0  # seconds into the run


@pytest.fixture
def two_reviews_v1(instances: Any) -> Any:
    instances.scale("reviews-v1", 2)
    return instances


def run_and_kill(run: Any, instances: Any, mesh: Mesh) -> tuple[LoadResult, float]:
    """Start ``run()`` in a thread, kill reviews-v1[1] once it is under way, then join."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = run()
        except BaseException as exc:  # re-raised in the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    thread.start()
    # The load's own clock: kill at a fixed point of the run (the event under test).
    time.sleep(KILL_AFTER)
    instances.kill("reviews-v1", 1)
    killed_at = time.monotonic() - started
    thread.join(timeout=90.0)
    if thread.is_alive():
        raise TimeoutError("load run did not finish within 90 s")
    if "error" in box:
        raise box["error"]
    return box["result"], killed_at


def test_kill_hidden_by_default_retries(
    two_reviews_v1: Any, mesh: Mesh, policy: Any, load: Any, record: Any
) -> None:
    from meshchaos.check import expect, share

    policy("virtual-service-all-v1.yaml")
    in_flight = 16
    result, killed_at = run_and_kill(
        lambda: load.gateway(requests=1500, concurrency=in_flight, duration=6.0),
        two_reviews_v1,
        mesh,
    )
    record.set("killed_at", killed_at)
    # Requests in flight on the instance when it dies are reset, which Istio's default
    # retryOn does not cover; productpage's own retry catches most of them. So the error
    # share is bounded by what was in flight (the concurrency), not zero.
    expect(result, evidence={"killed": f"reviews-v1[1] at {killed_at:.2f} s"}).to(
        share(Bookinfo.REVIEWS_ERROR.value, between=(0.0, in_flight / result.count)),
        share(Bookinfo.REVIEWS_V1.value, between=(1.0 - in_flight / result.count, 1.0)),
    )


def test_kill_without_retries_shows_errors(
    two_reviews_v1: Any, mesh: Mesh, policy: Any, load: Any, record: Any
) -> None:
    policy("virtual-service-all-v1.yaml", "retries-reviews-off.yaml")
    result, killed_at = run_and_kill(
        lambda: load.client(
            "http://reviews:9080/reviews/0", requests=4000, concurrency=16, duration=4.0
        ),
        two_reviews_v1,
        mesh,
    )
    errors = [s for s in result.samples if s.status != 200]
    record.set("killed_at", killed_at)
    record.set("errors", len(errors))
    early = [s for s in errors if s.start + s.latency < killed_at - 0.2]
    after_kill = sum(1 for s in result.samples if s.start + s.latency >= killed_at - 0.2)
    if not errors or early or len(errors) > after_kill:
        raise PolicyDeviation(
            "instance chaos without retries: expected errors only after the kill at "
            f"{killed_at:.2f} s, at most the {after_kill} requests completed after it; "
            f"observed {len(errors)} errors ({len(early)} before the kill)"
        )
