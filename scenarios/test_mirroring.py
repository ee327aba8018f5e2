"""Mirroring: httpbin v1 serves, v2 receives a copy of the configured share of requests.

The client must see only v1's replies (every request is routed to v1, so v1's inbound
counter grows by exactly one per request), and v2's inbound counter grows by the
mirrored share (fire-and-forget copies, replies dropped).
"""

from __future__ import annotations

from typing import Any

import pytest

from meshchaos.mesh.base import Mesh
from meshchaos.scenario import Scenario, httpbin, mirror_checks, run_scenario

pytestmark = [pytest.mark.mirroring, pytest.mark.integration]

CASES = [
    pytest.param(httpbin("/get", f"mirror-httpbin-v2-{pct}pct.yaml"), id=f"mirror-{pct}pct-to-v2")
    for pct in (100, 50, 10)
]


@pytest.mark.parametrize("scenario", CASES)
def test_mirroring(
    scenario: Scenario, mesh: Mesh, policy: Any, load: Any, record: Any, min_effect: float
) -> None:
    run_scenario(
        scenario,
        mesh=mesh,
        policy=policy,
        load=load,
        record=record,
        min_effect=min_effect,
        extra_checks=mirror_checks(mesh, record),
    )
