"""Traffic shifting: blue-green and canary weights on reviews, checked with binomial tests."""

from __future__ import annotations

import pytest

from meshchaos import Chaos, Scenario, bookinfo

pytestmark = [pytest.mark.traffic_shifting, pytest.mark.integration]

ALL_V1 = "virtual-service-all-v1.yaml"
CASES = [
    pytest.param(bookinfo(ALL_V1), id="blue-green-all-v1"),
    pytest.param(bookinfo(ALL_V1, "virtual-service-reviews-v3.yaml"), id="blue-green-switch-to-v3"),
    pytest.param(
        bookinfo(ALL_V1, "virtual-service-reviews-v1-90-v3-10.yaml"),
        id="canary-v1-90-v3-10",
    ),
    pytest.param(
        bookinfo(ALL_V1, "virtual-service-reviews-v1-50-v3-50.yaml"),
        id="canary-v1-50-v3-50",
    ),
    pytest.param(
        bookinfo(ALL_V1, "virtual-service-reviews-v1-80-v2-20.yaml"),
        id="canary-v1-80-v2-20",
    ),
]


@pytest.mark.parametrize("scenario", CASES)
def test_traffic_shifting(chaos: Chaos, scenario: Scenario) -> None:
    chaos.run(scenario)
