"""The engine against an in-process aiohttp server: counts, schedule, caps, errors."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from load_fakes import Backend, serving

from meshchaos.errors import LoadError
from meshchaos.load import LoadPlan, LoadResult, LoadTarget, Trigger, drive, run_load

LEAN = [pytest.param(True, id="lean"), pytest.param(False, id="aiohttp")]


def against(
    backend: Backend, path: str, plan: LoadPlan, *, lean: bool = True, **kw: Any
) -> LoadResult:
    async def go() -> LoadResult:
        async with serving(backend.app()) as base:
            return await drive(LoadTarget(base + path), plan, lean=lean, **kw)

    return asyncio.run(go())


@pytest.mark.parametrize("lean", LEAN)
def test_closed_loop_sends_exactly_n(lean: bool) -> None:
    backend = Backend()
    result = against(backend, "/ok", LoadPlan(concurrency=7, requests=503), lean=lean)
    assert result.count == 503
    assert backend.hits == 503
    assert result.status_counts() == {200: 503}
    assert result.counts() == {"status:200": 503}
    assert not result.stopped_by_deadline
    assert result.requested == 503
    assert all(s.latency >= 0 for s in result.samples)


@pytest.mark.parametrize("lean", LEAN)
def test_status_overload_chunked_and_connection_close(lean: bool) -> None:
    backend = Backend()
    for path, outcome in (
        ("/status/503", "status:503"),
        ("/chunked", "status:200"),
        ("/close", "status:200"),
    ):
        result = against(backend, path, LoadPlan(concurrency=2, requests=20), lean=lean)
        assert result.counts() == {outcome: 20}, path
    result = against(backend, "/overloaded", LoadPlan(concurrency=2, requests=10), lean=lean)
    assert all(s.overloaded for s in result.samples)
    example = result.examples["status:503"]
    assert example.startswith("HTTP 503")
    assert "x-envoy-overloaded: true" in example
    assert len(example) <= 500


def test_chunked_body_reaches_the_classifier() -> None:
    bodies: list[bytes] = []

    def keep(status: int, body: bytes, headers: Any) -> str:
        bodies.append(body)
        return "x"

    against(Backend(), "/chunked", LoadPlan(concurrency=1, requests=2), classifier=keep)
    assert bodies == [b"hello chunked world"] * 2


def test_duration_bounds_a_closed_loop() -> None:
    result = against(Backend(), "/sleep/0.01", LoadPlan(concurrency=2, duration=0.3))
    assert 0.25 <= result.duration <= 0.6
    assert 10 <= result.count <= 70
    assert result.stopped_by_deadline


def test_hard_caps_win_over_what_is_asked() -> None:
    backend = Backend()
    result = against(backend, "/ok", LoadPlan(concurrency=4, requests=10_000, max_requests=50))
    assert result.count == 50 == backend.hits
    result = against(
        Backend(), "/sleep/0.01", LoadPlan(concurrency=1, duration=100, max_duration=0.2)
    )
    assert result.duration < 1.0
    assert result.stopped_by_deadline


def test_open_loop_follows_the_schedule() -> None:
    result = against(Backend(), "/ok", LoadPlan(concurrency=4, qps=200, requests=100))
    starts = [s.start for s in result.samples]
    assert sorted(starts) == pytest.approx([i / 200 for i in range(100)], abs=1e-9)
    assert 0.45 <= result.duration <= 0.8  # 100 requests at 200/s: last due at 0.495 s
    assert result.qps == 200


def test_open_loop_counts_latency_from_the_intended_time() -> None:
    # One worker, one stall of 0.3 s at request 0: the requests due during the stall
    # wait for the worker, and their latency must include that wait.
    backend = Backend(stall_once=0.3)
    result = against(backend, "/stall", LoadPlan(concurrency=1, qps=100, requests=40))
    by_start = sorted(result.samples, key=lambda s: s.start)
    assert by_start[0].latency >= 0.3
    # request 10 was due at 0.1 s but could only go at ~0.3 s: ~0.2 s late
    assert by_start[10].latency == pytest.approx(0.2, abs=0.05)
    assert by_start[20].latency == pytest.approx(0.1, abs=0.05)
    assert max(s.latency for s in by_start[35:]) < 0.05  # caught up


def test_open_loop_duration_sets_the_count() -> None:
    result = against(Backend(), "/ok", LoadPlan(concurrency=2, qps=100, duration=0.25))
    assert result.count == 25


@pytest.mark.parametrize("lean", LEAN)
def test_timeouts_and_refused_connections_are_samples(lean: bool) -> None:
    result = against(
        Backend(), "/sleep/1", LoadPlan(concurrency=2, requests=2, timeout=0.1), lean=lean
    )
    assert result.counts() == {"error:timeout": 2}
    assert result.status_counts() == {0: 2}
    assert all(0.09 <= s.latency < 0.5 for s in result.samples)
    assert "error:timeout" in result.examples

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_load(LoadTarget(f"http://127.0.0.1:{port}/x"), LoadPlan(concurrency=1, requests=3))
    assert result.counts() == {"error:connect": 3}


def test_proxy_mode_sends_absolute_form_to_the_proxy() -> None:
    backend = Backend()

    async def go(lean: bool) -> LoadResult:
        async with serving(backend.proxy_app()) as proxy:
            target = LoadTarget("http://httpbin:8000/status/503", proxy=proxy)
            return await drive(target, LoadPlan(concurrency=2, requests=6), lean=lean)

    for lean in (True, False):
        result = asyncio.run(go(lean))
        assert result.counts() == {"status:200": 6}
        assert "via http://127.0.0.1:" in result.target
    assert set(backend.seen_hosts) == {"httpbin:8000"}
    assert set(backend.seen_paths) == {"http://httpbin:8000/status/503"}


@pytest.mark.parametrize("lean", LEAN)
def test_login_cookie_and_headers_are_sent(lean: bool) -> None:
    backend = Backend()
    plan = LoadPlan(concurrency=1, requests=3, user="jason", headers={"Cookie": "a=b"})
    against(backend, "/cookie", plan, lean=lean)
    assert backend.seen_cookies == ["a=b; session=user-jason"] * 3


def test_refuses_non_loopback_before_sending() -> None:
    with pytest.raises(LoadError, match="not loopback"):
        run_load(LoadTarget("http://10.0.0.1/"), LoadPlan(requests=1))
    with pytest.raises(LoadError, match="proxy"):
        run_load(LoadTarget("http://httpbin:8000/", proxy="http://10.1.1.1:80"), LoadPlan())


def test_progress_callback_is_called() -> None:
    calls: list[tuple[int, int]] = []
    against(
        Backend(),
        "/status/500",
        LoadPlan(concurrency=1, duration=0.7),
        progress=lambda n, e: calls.append((n, e)),
    )
    assert len(calls) >= 2
    n, errors = calls[-1]
    assert n == errors > 0


def test_run_load_works_inside_a_running_loop() -> None:
    # From a coroutine (an async test), run_load uses a helper thread with its own
    # loop; a refused port still yields a sample, proving that path ran.
    async def inside() -> LoadResult:
        return run_load(LoadTarget("http://127.0.0.1:9/x"), LoadPlan(concurrency=1, requests=1))

    assert asyncio.run(inside()).counts() == {"error:connect": 1}


def test_trigger_fires_after_n_completions_while_load_goes_on() -> None:
    backend = Backend()
    hits_at_fire: list[int] = []
    trigger = Trigger(after=100, action=lambda: hits_at_fire.append(backend.hits), name="mark")
    plan = LoadPlan(concurrency=4, requests=400, triggers=(trigger,))
    result = against(backend, "/ok", plan)
    assert result.count == 400
    (event,) = result.events
    assert event.name == "mark"
    assert event.after == 100
    assert event.error is None
    assert hits_at_fire
    assert hits_at_fire[0] >= 100
    assert 0 <= event.started <= event.finished
    # The load went on past the trigger: requests were sent after it ended, and the
    # windows split the run.
    after = [s for s in result.samples if event.is_after(s)]
    before = [s for s in result.samples if event.is_before(s)]
    assert after
    assert len(before) >= 100 - plan.concurrency


def test_trigger_failure_and_unfired_trigger_are_events_with_errors() -> None:
    def boom() -> None:
        raise RuntimeError("kill failed")

    plan = LoadPlan(
        concurrency=2,
        requests=50,
        triggers=(Trigger(10, boom, "boom"), Trigger(49, lambda: None, "late")),
    )
    backend = Backend()
    result = against(backend, "/status/503", plan)
    events = {e.name: e for e in result.events}
    assert events["boom"].error == "RuntimeError: kill failed"
    assert events["late"].error is None
    short = LoadPlan(concurrency=1, requests=20, duration=0.1, triggers=(Trigger(19, boom, "x"),))
    result = against(Backend(), "/sleep/0.03", short)
    (never,) = result.events
    assert never.error is not None
    assert never.error.startswith("never fired")


def test_trigger_must_leave_load_after_it() -> None:
    plan = LoadPlan(concurrency=1, requests=10, triggers=(Trigger(10, lambda: None, "x"),))
    with pytest.raises(LoadError, match=r"trigger .x. after 10 requests: must be in 1\.\.9"):
        plan.check()


def test_trigger_then_extends_the_run_past_a_slow_action() -> None:
    import time

    def slow() -> None:
        time.sleep(0.2)  # the action under test takes this long; the load must wait it out

    trigger = Trigger(after=20, action=slow, name="slow", then=50)
    result = against(Backend(), "/ok", LoadPlan(concurrency=4, requests=30, triggers=(trigger,)))
    (event,) = result.events
    after = [s for s in result.samples if event.is_after(s)]
    assert len(after) >= 50
    assert event.finished - event.started >= 0.2
