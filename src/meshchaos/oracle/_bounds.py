"""Bounds for the mechanisms that are only approximately predictable.

Connection pools (docs/ISTIO_SEMANTICS.md §7, §10): Envoy's circuit breakers are approximate
across worker threads (3 of 6 concurrent requests got through with max_connections 1,
max_pending 1). Outlier detection (§7): ejection after ``consecutive5xxErrors``, back
after ``baseEjectionTime`` x ejection count, only if ``maxEjectionPercent`` allows one
host of k (Istio never sets ``always_eject_one_host``).

Both act only on the request's first hop (the client's or gateway's cluster), where the
load shape of the ``RequestClass`` (``concurrency``, ``requests``, ``duration``) applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from meshchaos.istio.cluster_policy import (
    MAX_UINT32,
    EjectionSettings,
    circuit_breaker_limits,
    ejection_settings,
)
from meshchaos.istio.model import ConnectionPoolSettings, Resource
from meshchaos.oracle._engine import ClusterUse
from meshchaos.oracle._match import cluster_policy
from meshchaos.oracle.prediction import LatencyBand, OutcomeShare, RequestClass
from meshchaos.oracle.topology import Behaviour, Topology

_503 = "status:503"
EJECTIONS = "outlier_detection.ejections_enforced_total"
_MAX_EJECTION_TIME = 300.0  # Envoy's default max_ejection_time (§7: "max 300 s")


def cluster_limits(
    resources: Sequence[Resource], service: str, subset: str | None, port: int
) -> tuple[float, EjectionSettings | None]:
    """The cluster's admission capacity (``inf``: unlimited) and outlier detection (``None``:
    none), from the shared §7 merge: what the bounds below work from."""
    policy = cluster_policy(resources, service, subset, port)
    od = policy.outlier_detection
    return pool_capacity(policy.connection_pool), ejection_settings(od) if od else None


def apply(
    resources: Sequence[Resource],
    topology: Topology,
    request: RequestClass,
    workers: int,
    uses: Sequence[ClusterUse],
    outcomes: list[OutcomeShare],
    notes: list[str],
    counter_bounds: dict[str, tuple[int, int]],
) -> list[OutcomeShare]:
    """Widen ``outcomes`` into bounds where the first hop's cluster has a pool or outlier
    detection; append the reasoning to ``notes`` and the run-wide counter bounds (outlier
    ejections) to ``counter_bounds``."""
    for use in uses:
        cap, ejection = cluster_limits(resources, use.service, use.subset, use.port)
        if not math.isinf(cap):
            outcomes = _pool(cap, request, workers, use, outcomes, notes)
        if ejection is not None:
            outcomes = _outlier(ejection, topology, request, use, outcomes, notes, counter_bounds)
    return outcomes


def pool_capacity(pool: ConnectionPoolSettings | None) -> float:
    """Requests a cluster admits at once: connections (HTTP/1.1: one request each) plus
    pending, capped by max requests. ``inf`` when nothing is limited (§7 defaults 2^32-1)."""
    limits = circuit_breaker_limits(pool)

    def bound(value: int) -> float:
        return math.inf if value == MAX_UINT32 else float(value)

    conns, pending = bound(limits.max_connections), bound(limits.max_pending_requests)
    return min(conns + pending, bound(limits.max_requests))


def _pool(
    cap: float,
    request: RequestClass,
    workers: int,
    use: ClusterUse,
    outcomes: list[OutcomeShare],
    notes: list[str],
) -> list[OutcomeShare]:
    c = request.concurrency
    if c <= 1:
        notes.append(
            f"connection pool on {use.service}: capacity {cap:g}, concurrency 1 → "
            "never more than one request in flight: overflow share exactly 0"
        )
        return outcomes
    # Lower bound: in a closed loop with c slots, at most workers x cap requests are
    # admitted at any moment (each worker thread may overshoot the shared limit), so at
    # least c - workers x cap slots are busy being rejected; a rejection (local reply)
    # is never slower than a served request, hence share >= (c - workers x cap) / c.
    low = max(0.0, (c - workers * cap) / c) * use.share
    # Point estimate: the same argument with one exact breaker.
    point = max(low, (c - cap) / c * use.share)
    # Upper bound: the first request always finds an empty pool.
    high = use.share * (1.0 - 1.0 / request.requests) if request.requests else use.share
    notes.append(
        f"connection pool on {use.service}: capacity {cap:g} (connections + pending), "
        f"concurrency {c}, {workers} worker threads → 503 overflow (UO, never retried) share "
        f"in [{low:.4g}, {high:.4g}], point {point:.4g}; "
        "low = max(0, (c - workers x capacity) / c)"
    )
    return _add_503(outcomes, low, point, high)


def _add_503(
    outcomes: list[OutcomeShare], lo: float, point: float, hi: float
) -> list[OutcomeShare]:
    """Mix an extra 503 share q in [lo, hi] into the prediction: X -> (1-q) P(X) + q [503]."""
    out: list[OutcomeShare] = []
    seen = False
    for o in outcomes:
        p = o.probability
        if o.outcome == _503:
            seen = True
            band = LatencyBand(0.0, o.latency.high)
            out.append(
                OutcomeShare(
                    _503,
                    point + (1 - point) * p,
                    band,
                    low=lo + (1 - lo) * p,
                    high=hi + (1 - hi) * p,
                )
            )
        else:
            out.append(
                OutcomeShare(
                    o.outcome,
                    (1 - point) * p,
                    o.latency,
                    low=(1 - hi) * p,
                    high=(1 - lo) * p,
                    components=o.components,
                )
            )
    if not seen:
        fast = max((o.latency.high for o in outcomes), default=0.25)
        out.append(OutcomeShare(_503, point, LatencyBand(0.0, fast), low=lo, high=hi))
    return out


def ejection_cycles(base: float, duration: float | None) -> int:
    """How many times an always-failing host can come back within ``duration``: ejection
    number m lasts at least min(m x base, max(base, 300 s)); one cycle when unknown."""
    if duration is None:
        return 1
    cycles, elapsed, m = 1, 0.0, 1
    while True:
        elapsed += min(m * base, max(base, _MAX_EJECTION_TIME))
        if elapsed > duration:
            return cycles
        cycles, m = cycles + 1, m + 1


def _outlier(
    od: EjectionSettings,
    topology: Topology,
    request: RequestClass,
    use: ClusterUse,
    outcomes: list[OutcomeShare],
    notes: list[str],
    counter_bounds: dict[str, tuple[int, int]],
) -> list[OutcomeShare]:
    # §7: unset consecutive_5xx defaults to 5 and stays active; 0 disables a detector.
    thresholds = [x for x in (od.consecutive_5xx, od.consecutive_gateway_errors) if x]
    if not thresholds:
        return outcomes
    n = min(thresholds)
    service = topology.services[use.service]
    k = sum(c for _, c in use.hosts)
    bad = sum(c for v, c in use.hosts if _always_fails(service.versions[v]))
    if bad == 0 or k == 0:
        notes.append(
            f"outlier detection on {use.service}: no always-failing instance; "
            "ejection of intermittent failures is not modelled (exact shares kept)"
        )
        return outcomes
    max_pct = od.max_ejection_percent
    ejectable = math.floor(max_pct * k / 100)
    if ejectable < bad:
        notes.append(
            f"outlier detection on {use.service}: maxEjectionPercent {max_pct} < "
            f"100 x {bad}/{k}: the failing host is never ejected (§7 gotcha)"
        )
        return outcomes
    if not request.requests:
        notes.append(
            f"outlier detection on {use.service}: give RequestClass.requests for "
            "a bound on the 503 share; shares shown assume no ejection"
        )
        return outcomes
    total = request.requests
    base = od.base_ejection_time
    cycles = ejection_cycles(base, request.duration)
    c = request.concurrency
    p0 = next((o.probability for o in outcomes if o.outcome == _503), 0.0)
    returning = any(
        f"{use.service}-{v}" in topology.ejected_before
        for v, _ in use.hosts
        if _always_fails(service.versions[v])
    )
    if returning:
        return _returning(
            outcomes, p0, bad, n, k, total, cycles, use.service, notes, counter_bounds
        )
    # Each cycle: the host answers n consecutive 5xx and is ejected at once; up to c - 1
    # requests already sent to it still fail.
    high = min(p0, bad * (n + c - 1) * cycles / total)
    # The bad host gets at least n requests before its first ejection once the run is
    # long enough (N >= 10 k n: missing that is below e^-10 for uniform picks).
    low = min(high, bad * n / total) if total >= 10 * k * n else 0.0
    point = min(high, bad * n * cycles / total)
    # Ejections over the run, counted by the client's cluster: each bad host is ejected
    # once it has failed n times in a row (certain once the run is long enough, as for
    # ``low``), and at most once per ejection cycle.
    first = 1 if total >= 10 * k * n else 0
    counter_bounds[EJECTIONS] = (bad * first, bad * cycles)
    notes.append(
        f"outlier detection on {use.service}: {bad} of {k} instances always 5xx, "
        f"consecutive errors {n}, base ejection {base:g} s, {cycles} ejection cycle(s)"
        f"{'' if request.duration else ' (duration unknown: assume shorter than one ejection)'}"
        f" → 503 count <= bad x (n + c - 1) x cycles = {bad * (n + c - 1) * cycles} of "
        f"{total}: share in [{low:.4g}, {high:.4g}]; ejections in "
        f"[{bad * first}, {bad * cycles}]"
    )
    return _rescale_503(outcomes, p0, low, point, high)


def _returning(
    outcomes: list[OutcomeShare],
    p0: float,
    bad: int,
    n: int,
    k: int,
    total: int,
    cycles: int,
    service: str,
    notes: list[str],
    counter_bounds: dict[str, tuple[int, int]],
) -> list[OutcomeShare]:
    # Envoy counts consecutive 5xx in the worker and resets the count on the main thread
    # once it has ejected the host; the answers of the requests still in flight land on
    # either side of that reset, so the count may be left at or past the threshold. Back
    # in, such a host is not ejected inline again (the count never equals the threshold
    # on its way up): measured here, 77 and 81 of 400 requests failed after a return,
    # against 3 before the first ejection. So the oracle only bounds it by no ejection.
    low = min(p0, bad * n / total) if total >= 10 * k * n else 0.0
    counter_bounds[EJECTIONS] = (0, bad * cycles)
    notes.append(
        f"outlier detection on {service}: the always-failing instance was ejected before "
        "and is back: its consecutive-5xx count may be past the threshold, so it may fail "
        f"as if never ejected → 503 share in [{low:.4g}, {p0:.4g}]; ejections in "
        f"[0, {bad * cycles}]"
    )
    return _rescale_503(outcomes, p0, low, p0, p0)


def _rescale_503(
    outcomes: list[OutcomeShare], p0: float, lo: float, point: float, hi: float
) -> list[OutcomeShare]:
    """Replace the 503 share p0 by q in [lo, hi]; the others share the rest in proportion."""
    rest = 1.0 - p0
    out: list[OutcomeShare] = []
    for o in outcomes:
        if o.outcome == _503:
            out.append(
                OutcomeShare(_503, point, o.latency, low=lo, high=hi, components=o.components)
            )
        elif rest > 0:
            p = o.probability / rest
            out.append(
                OutcomeShare(
                    o.outcome,
                    p * (1 - point),
                    o.latency,
                    low=p * (1 - hi),
                    high=p * (1 - lo),
                    components=o.components,
                )
            )
    return out


def _always_fails(beh: Behaviour) -> bool:
    return (
        not beh.httpbin
        and not beh.paths
        and bool(beh.responses)
        and all(r.status >= 500 for r in beh.responses)
    )
