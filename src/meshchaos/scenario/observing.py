"""What a scenario reads from the mesh besides the load: proxy counters, and waits on them.

Faults and retries act in the calling proxy (a sidecar or the gateway), so the sum of
a client-side counter over every proxy is what the oracle's per-request expectation is
about; inbound counters count what a workload's sidecar passed to its app.

Nothing here turns a failure into a number: a proxy whose stats cannot be read, or a
counter that no proxy emits, is :class:`~meshchaos.check.Unreadable`, and the check that
depends on it fails saying why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from meshchaos.check import Check, Unreadable, counter_between, counter_matches
from meshchaos.errors import MeshError, StatNotEmitted
from meshchaos.istio.model import Resource, VirtualService
from meshchaos.load.result import LoadResult
from meshchaos.mesh.base import CounterQuery, Mesh, Side
from meshchaos.oracle.prediction import Prediction
from meshchaos.oracle.topology import BOOKINFO, Topology

__all__ = [
    "Reading",
    "counter_checks",
    "counter_deltas",
    "inbound_requests",
    "read_counters",
    "running_topology",
    "settled",
    "wait_for",
]

Reading = int | Unreadable

POLL_INTERVAL = 0.1  # seconds between reads of a proxy's own state while converging


def read_counters(
    mesh: Mesh, names: Iterable[str], workloads: Iterable[str] | None = None
) -> dict[str, Reading]:
    """Client-side sums of the counters ``names`` (:data:`~meshchaos.mesh.base.COUNTER_NAMES`)
    over the live proxies of ``workloads`` (default: every workload and the gateway).

    A counter no proxy emits, or a proxy whose stats could not be read, is
    :class:`Unreadable` saying why, never a zero.
    """
    chosen = None if workloads is None else tuple(workloads)
    queries = {name: CounterQuery(name, Side.CLIENT, chosen) for name in names}
    return _read(mesh, queries)


def inbound_requests(mesh: Mesh, workload: str, port: int = 8000) -> Reading:
    """Requests ``workload``'s sidecars passed to its app on ``port`` (server side)."""
    query = CounterQuery("upstream_rq_total", Side.SERVER, (workload,), port)
    return _read(mesh, {workload: query})[workload]


def _read(mesh: Mesh, queries: Mapping[str, CounterQuery]) -> dict[str, Reading]:
    """All ``queries`` in one read; when one stat is not emitted, each on its own, so
    that only the missing ones are unreadable."""
    try:
        values = mesh.counters(list(queries.values()))
        return {key: values[q] for key, q in queries.items()}
    except StatNotEmitted:
        pass
    except MeshError as exc:
        return dict.fromkeys(queries, Unreadable(f"stats not read: {exc}"))
    out: dict[str, Reading] = {}
    for key, q in queries.items():
        try:
            out[key] = mesh.counters([q])[q]
        except MeshError as exc:  # StatNotEmitted included
            out[key] = Unreadable(str(exc))
    return out


def counter_deltas(
    before: Mapping[str, Reading], after: Mapping[str, Reading]
) -> dict[str, Reading]:
    """``after - before`` per counter; unreadable if either reading is."""
    out: dict[str, Reading] = {}
    for name, end in after.items():
        start = before.get(name, Unreadable("not read before the load"))
        if isinstance(start, Unreadable):
            out[name] = start
        elif isinstance(end, Unreadable):
            out[name] = end
        else:
            out[name] = end - start
    return out


def wait_for(
    read: Callable[[], Reading], done: Callable[[int], bool], *, deadline: float, what: str
) -> float:
    """Poll ``read`` until ``done(value)``; the seconds it took. Raises :class:`MeshError`
    at ``deadline`` seconds, or at once if the value cannot be read."""
    start = time.monotonic()
    while True:
        value = read()
        if isinstance(value, Unreadable):
            raise MeshError(f"waiting for {what}: {value}")
        if done(value):
            return time.monotonic() - start
        if time.monotonic() - start >= deadline:
            raise MeshError(f"waiting for {what}: not reached within {deadline:g} s (last {value})")
        time.sleep(POLL_INTERVAL)  # polling the proxy's own state, bounded by the deadline


def settled(read: Callable[[], Reading], *, deadline: float = 3.0) -> Reading:
    """A counter once it stops changing (mirrored copies land after the replies)."""
    end = time.monotonic() + deadline
    last = read()
    while not isinstance(last, Unreadable) and time.monotonic() < end:
        time.sleep(POLL_INTERVAL)
        now = read()
        if now == last:
            return now
        last = now
    return last


def running_topology(mesh: Mesh) -> Topology:
    """Bookinfo + httpbin as the oracle knows them, with the instances the mesh runs now
    (scenarios scale workloads such as ``ratings-v-faulty`` up and down)."""
    counts: dict[str, int] = {}
    for proxy in mesh.status():
        if proxy.alive and proxy.workload in BOOKINFO.instances:
            counts[proxy.workload] = counts.get(proxy.workload, 0) + 1
    if not counts:  # a backend that reports no proxies: trust the catalogue
        return BOOKINFO
    zeroed = dict.fromkeys(BOOKINFO.instances, 0)
    return BOOKINFO.scaled(**{**zeroed, **counts})


def _max_events(name: str, resources: Sequence[Resource], source: str) -> int:
    """The most ``name`` events one request can cause (an upper bound)."""
    per_call = 1
    if name == "upstream_rq_retry":
        attempts = [
            route.retries.attempts
            for r in resources
            if isinstance(r, VirtualService)
            for route in r.http
            if route.retries is not None
        ]
        per_call = max([2, *attempts])  # Istio's default policy retries up to 2 times
    # productpage calls reviews up to twice (its own retry), and reviews calls ratings.
    return per_call * (2 if source == "gateway" else 1)


def counter_checks(
    prediction: Prediction,
    deltas: Mapping[str, Reading],
    result: LoadResult,
    told: Sequence[Resource],
) -> list[Check]:
    """One check per counter in ``deltas`` against what ``prediction`` expects of it."""
    n = result.count
    source = prediction.request.source
    checks: list[Check] = []
    for name, delta in deltas.items():
        if name in prediction.counter_bounds:
            low, high = prediction.counter_bounds[name]
            checks.append(counter_between(name, delta, low, high, why="oracle bound"))
            continue
        if name == "upstream_rq_pending_overflow":
            # Compared with the overloaded responses the client saw, not with a rate.
            overloaded = sum(1 for s in result.samples if s.overloaded)
            checks.append(counter_matches(name, delta, overloaded / max(1, n), n))
            continue
        if name in prediction.unpredictable:
            continue  # its rate depends on the balancer's split: the oracle gives none
        # A counter the oracle does not mention is expected to stay at zero.
        expected = prediction.counters.get(name, 0.0)
        # One request can count several events (retries; productpage asking reviews
        # twice), so the count is no binomial. Scaled by the most events one request
        # can make (A), each request's share lies in [0, 1], and by Bhatia-Davis its
        # variance is at most that of a Bernoulli with the same mean: the binomial
        # test on count/A is conservative.
        a = max(_max_events(name, told, source), math.ceil(expected))
        scaled = delta if isinstance(delta, Unreadable) else round(delta / a)
        checks.append(counter_matches(f"{name} (/{a})" if a > 1 else name, scaled, expected / a, n))
    return checks
