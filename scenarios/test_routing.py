"""Request routing: header matches (the task's jason -> v2), withoutHeaders, URI matches."""

from __future__ import annotations

import pytest

from meshchaos import Chaos, Scenario, bookinfo

pytestmark = [pytest.mark.routing, pytest.mark.integration]

ALL_V1 = "virtual-service-all-v1.yaml"
TEST_V2 = "virtual-service-reviews-test-v2.yaml"
WITHOUT = "virtual-service-reviews-without-jason-v3.yaml"
CASES = [
    pytest.param(bookinfo(ALL_V1), id="all-v1-no-stars"),
    pytest.param(bookinfo(ALL_V1, TEST_V2, user="jason"), id="header-jason-to-v2"),
    pytest.param(bookinfo(ALL_V1, TEST_V2), id="header-anonymous-to-v1"),
    pytest.param(bookinfo(ALL_V1, TEST_V2, user="alice"), id="header-other-user-to-v1"),
    pytest.param(bookinfo(ALL_V1, WITHOUT), id="without-headers-anonymous-to-v3"),
    pytest.param(bookinfo(ALL_V1, WITHOUT, user="jason"), id="without-headers-jason-to-v2"),
    pytest.param(
        bookinfo(ALL_V1, "virtual-service-reviews-uri-regex-v2.yaml"),
        id="uri-regex-reviews-id-to-v2",
    ),
    pytest.param(
        bookinfo(ALL_V1, "virtual-service-reviews-uri-exact-other-v2.yaml"),
        id="uri-exact-other-id-falls-through-to-v1",
    ),
]


@pytest.mark.parametrize("scenario", CASES)
def test_routing(chaos: Chaos, scenario: Scenario) -> None:
    chaos.run(scenario)
