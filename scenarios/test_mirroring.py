"""Mirroring: httpbin v1 serves, v2 receives a copy of the configured share of requests.

The client must see only v1's replies (every request is routed to v1, so v1's inbound
counter grows by exactly one per request), and v2's inbound counter grows by the
mirrored share (fire-and-forget copies, replies dropped).
"""

from __future__ import annotations

import pytest

from meshchaos import Chaos, Mirror, Scenario, httpbin

pytestmark = [pytest.mark.mirroring, pytest.mark.integration]

CASES = [
    pytest.param(
        httpbin(
            "/get", f"mirror-httpbin-v2-{pct}pct.yaml", mirror=Mirror("httpbin-v1", "httpbin-v2")
        ),
        id=f"mirror-{pct}pct-to-v2",
    )
    for pct in (100, 50, 10)
]


@pytest.mark.parametrize("scenario", CASES)
def test_mirroring(chaos: Chaos, scenario: Scenario) -> None:
    chaos.run(scenario)
