"""Plans, loopback refusal and duration parsing."""

from __future__ import annotations

import pytest

from meshchaos.errors import LoadError
from meshchaos.load import LoadPlan, LoadTarget, parse_duration
from meshchaos.load.plan import check_target, is_loopback_host


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m", 60.0), ("1.5s", 1.5), ("250ms", 0.25), ("2h", 7200.0), ("30", 30.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "10x", "-1s", "1 m s", "1e3"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(LoadError, match="like 250ms, 10s"):
        parse_duration(text)


def test_parse_duration_rejects_zero() -> None:
    with pytest.raises(LoadError, match="greater than zero"):
        parse_duration("0s")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "example.com", "0.0.0.0", "128.0.0.1", "::"])
def test_not_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(LoadTarget("http://127.0.0.1:8080/productpage"), id="direct-loopback"),
        pytest.param(LoadTarget("http://[::1]:80/"), id="direct-ipv6"),
        pytest.param(LoadTarget("http://httpbin:8000/get", "http://127.0.0.1:1"), id="mesh-name"),
        pytest.param(
            LoadTarget("http://reviews.default.svc.cluster.local:9080/", "http://localhost:2"),
            id="mesh-fqdn",
        ),
    ],
)
def test_accepted_targets(target: LoadTarget) -> None:
    check_target(target)


@pytest.mark.parametrize(
    ("target", "match"),
    [
        pytest.param(LoadTarget("http://10.0.0.1/"), "not loopback", id="direct-private"),
        pytest.param(LoadTarget("http://httpbin:8000/"), "not loopback", id="mesh-name-no-proxy"),
        pytest.param(
            LoadTarget("http://example.com/", "http://127.0.0.1:1"),
            "in-mesh",
            id="public-via-proxy",
        ),
        pytest.param(
            LoadTarget("http://8.8.8.8/", "http://127.0.0.1:1"), "in-mesh", id="public-ip-via-proxy"
        ),
        pytest.param(
            LoadTarget("http://httpbin:8000/", "http://10.0.0.2:15001"), "proxy", id="remote-proxy"
        ),
        pytest.param(LoadTarget("ftp://127.0.0.1/"), "http://", id="scheme"),
        pytest.param(LoadTarget("/productpage"), "absolute", id="path-only"),
    ],
)
def test_refused_targets(target: LoadTarget, match: str) -> None:
    with pytest.raises(LoadError, match=match):
        check_target(target)


def test_plan_check_reports_every_problem() -> None:
    plan = LoadPlan(concurrency=0, requests=0, timeout=0, method="get")
    with pytest.raises(LoadError) as info:
        plan.check()
    text = str(info.value)
    for word in ("concurrency", "requests", "timeout", "method"):
        assert word in text


def test_caps() -> None:
    assert LoadPlan(requests=10**9).request_cap() == 200_000
    assert LoadPlan(requests=10**9, max_requests=10**9).request_cap() == 5_000_000
    assert LoadPlan(duration=10_000).time_cap() == 600.0
    assert LoadPlan().time_cap() == 5.0  # neither -n nor -t: 5 s, like fortio
    assert LoadPlan(qps=10, duration=2.05).request_cap() == 21
    assert not LoadPlan(qps=0).is_open_loop
