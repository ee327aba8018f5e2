"""The generator against a real Envoy: throughput sanity and latency calibration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshchaos.load import LoadPlan, LoadTarget, run_load
from meshchaos.load.bare_envoy import BareEnvoy, bare_envoy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def envoy() -> Iterator[BareEnvoy]:
    with bare_envoy(delay=0.1) as e:
        yield e


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "aiohttp"])
def test_direct_response_counts(envoy: BareEnvoy, lean: bool) -> None:
    result = run_load(
        LoadTarget(envoy.direct_url), LoadPlan(concurrency=8, requests=2000), lean=lean
    )
    assert result.status_counts() == {200: 2000}
    assert result.percentile(50) < 0.02


def test_fixed_delay_latency_closed_loop(envoy: BareEnvoy) -> None:
    result = run_load(LoadTarget(envoy.delay_url), LoadPlan(concurrency=8, requests=200))
    assert result.status_counts() == {200: 200}
    assert 0.100 <= result.percentile(50) <= 0.110


def test_fixed_delay_latency_open_loop(envoy: BareEnvoy) -> None:
    result = run_load(LoadTarget(envoy.delay_url), LoadPlan(concurrency=16, qps=50, requests=100))
    assert result.status_counts() == {200: 100}
    assert 0.100 <= result.percentile(50) <= 0.110
    assert 1.9 <= result.duration <= 2.3  # last request due at 1.98 s, plus ~100 ms
