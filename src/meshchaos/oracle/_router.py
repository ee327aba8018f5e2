"""One proxy's route action: fault filter, then the router's attempts under timeouts.

docs/ISTIO_SEMANTICS.md §5: the fault filter runs in the caller's proxy before the router; an
abort never reaches the router (never retried, no mirror) and a delay is not counted by
the route timeout. §3/§4: the route timeout covers all attempts; per-try timeouts; the
retry policy (user ``retries`` or Istio's built-in default) and Envoy's retry backoff.
Which timeout, retry policy and fault fractions a route has is decided once, in
:mod:`meshchaos.istio.route_policy`; this module runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshchaos.istio import route_policy as istio
from meshchaos.istio.model import HTTPFaultInjection, HTTPRoute, HTTPRouteDestination
from meshchaos.oracle._dist import Dist, Resp

_BACKOFF_BASE = 0.025  # Envoy default retry backoff base (§4)
# Envoy re-draws a host up to 5 more times when previous_hosts rejects it (§4).
_HOST_DRAWS = 6


@dataclass(frozen=True)
class RetryPolicy:
    """How Envoy's router runs a route's retry policy (which one is istiod's, §4)."""

    retries: int
    on: frozenset[str]
    codes: frozenset[int] = frozenset()
    per_try: float | None = None
    previous_hosts: bool = True
    backoff: float = _BACKOFF_BASE

    @classmethod
    def of(cls, policy: istio.RetryPolicy | None) -> RetryPolicy:
        """The router's view of ``effective_retry_policy``'s answer; ``None`` is no retries."""
        if policy is None:
            return NO_RETRY
        return cls(
            retries=policy.num_retries,
            on=policy.conditions,
            codes=frozenset(policy.retriable_status_codes),
            per_try=policy.per_try_timeout,
            previous_hosts=policy.previous_hosts,
            backoff=_BACKOFF_BASE if policy.backoff is None else policy.backoff,
        )

    def retries_status(self, status: int) -> bool:
        """Whether an upstream response with ``status`` is retried (Envoy router docs)."""
        return (
            ("5xx" in self.on and status >= 500)
            or ("gateway-error" in self.on and status in (502, 503, 504))
            or ("retriable-4xx" in self.on and status == 409)
            or ("retriable-status-codes" in self.on and status in self.codes)
        )

    @property
    def retries_connect_failure(self) -> bool:
        """Whether a failed connection is retried: Envoy's ``connect-failure``, and the
        reset family that includes it (``reset``, ``5xx``, ``gateway-error``)."""
        return bool(self.on & {"connect-failure", "reset", "5xx", "gateway-error"})

    @property
    def retries_per_try_timeout(self) -> bool:
        # §4: only 5xx, gateway-error or reset retry a per-try timeout [E].
        return bool(self.on & {"5xx", "gateway-error", "reset"})

    def max_backoff(self, retry: int) -> float:
        """Upper end of Envoy's jittered backoff before retry number ``retry`` (1-based):
        random in [0, (2^k - 1) x base), capped at 10 x base."""
        return min(float(2**retry - 1) * self.backoff, 10.0 * self.backoff)

    def describe(self) -> str:
        if self.retries == 0:
            return "no retries"
        codes = f" codes {sorted(self.codes)}" if self.codes else ""
        per_try = f", perTryTimeout {self.per_try:g} s" if self.per_try is not None else ""
        return f"{self.retries} retries on {','.join(sorted(self.on))}{codes}{per_try}"


# Envoy's response flag for a connection that could not be made (a dead instance).
CONNECT_FAILURE = "UF"
NO_RETRY = RetryPolicy(0, frozenset(), previous_hosts=False)


@dataclass(frozen=True)
class FaultShares:
    """What the fault filter of a route does, as probabilities (§5)."""

    delay_p: float = 0.0
    delay: float = 0.0
    abort_p: float = 0.0
    status: int = 200
    note: str = ""


def fault_shares(fault: HTTPFaultInjection | None) -> FaultShares:
    """``effective_fault`` as probabilities: a delay or abort istiod leaves out is 0 %."""
    effective = istio.effective_fault(fault)
    if effective is None:
        return FaultShares()
    pd = d = pa = 0.0
    status, note = 200, ""
    if effective.delay is not None:
        pd, d = effective.delay.fraction.probability, effective.delay.seconds
    abort = effective.abort
    if abort is not None:
        pa = abort.fraction.probability
        if abort.http_status is not None:
            status = abort.http_status
        else:
            # §5: gRPC aborts are HTTP 200 + grpc-status; clients classify by HTTP status.
            note = f"gRPC abort {abort.grpc_name} is HTTP 200 + grpc-status"
    return FaultShares(pd, d, pa, status, note)


@dataclass(frozen=True)
class RouteFacts:
    """What the oracle takes from one route: its destinations with their shares (§2), timeout
    (None: disabled), the router's retry policy, the fault filter's draws and the mirror
    shares (§6)."""

    destinations: tuple[tuple[HTTPRouteDestination, float], ...]
    timeout: float | None
    retry: RetryPolicy
    fault: FaultShares
    mirrors: tuple[tuple[int, float], ...]  # (index in route.mirror_policies(), share)


def route_facts(route: HTTPRoute, *, consistent_hash: bool = False) -> RouteFacts:
    """The facts of ``route`` from the shared Istio semantics (§3-§6); ``consistent_hash``:
    its single destination balances by consistent hash (§4 drops previous_hosts)."""
    mirrors = []
    for i, mp in enumerate(route.mirror_policies()):
        fraction = istio.mirror_fraction(mp.percentage)
        if fraction is not None:
            mirrors.append((i, fraction.probability))
    return RouteFacts(
        destinations=istio.route_destinations(route),
        timeout=istio.route_timeout(route),
        retry=RetryPolicy.of(
            istio.effective_retry_policy(route.retries, consistent_hash=consistent_hash)
        ),
        fault=fault_shares(route.fault),
        mirrors=tuple(mirrors),
    )


def apply_fault(shares: FaultShares, inner: Dist) -> Dist:
    """The fault filter in front of the router's result ``inner`` (§5)."""
    pd, d, pa, status = shares.delay_p, shares.delay, shares.abort_p, shares.status
    if pd == 0.0 and pa == 0.0:
        return inner
    out = Dist()
    abort = Resp(status, flag="FI")
    for delayed, wd in ((True, pd), (False, 1.0 - pd)):
        if wd <= 0.0:
            continue

        def shift(r: Resp, delayed: bool = delayed) -> Resp:
            # The delay is one Envoy timer, outside the route timeout (§5 table).
            return r.later(d, 1) if delayed else r

        out.add(shift(abort), wd * pa)
        for r, p in inner.items():
            out.add(shift(r), wd * (1.0 - pa) * p)
    out.add_expectations(inner, 1.0 - pa)
    out.counters["fault.delays_injected"] += pd
    out.counters["fault.aborts_injected"] += pa
    return out


def _pick(
    counts: Sequence[int],
    tried: Sequence[int],
    previous_hosts: bool,
    weights: Sequence[float] | None = None,
) -> list[float]:
    """Probability of each version for the next attempt.

    One draw picks version ``v`` with ``weights[v]`` (default: its share of the hosts,
    LEAST_REQUEST with equal load; see ``_balance`` for unequal load), and a host of it
    uniformly; ``previous_hosts`` redraws a tried host up to 5 times.
    """
    k = sum(counts)
    base = [c / k for c in counts] if weights is None else list(weights)
    m = sum(tried)
    if not previous_hosts or m == 0 or m >= k:
        return base
    # Chance that one draw lands on an already tried host.
    ratio = sum(b * t / c for b, t, c in zip(base, tried, counts, strict=True) if c)
    if ratio >= 1.0:
        return base
    untried = sum(ratio**j for j in range(_HOST_DRAWS))
    again = ratio ** (_HOST_DRAWS - 1)
    return [
        b * ((c - t) / c * untried + t / c * again) if c else 0.0
        for b, t, c in zip(base, tried, counts, strict=True)
    ]


def attempts(
    upstreams: Sequence[tuple[int, Dist]],
    policy: RetryPolicy,
    timeout: float | None,
    weights: Sequence[float] | None = None,
) -> Dist:
    """The router's attempts over hosts ``(instances, upstream answer)`` of one cluster.

    Each attempt draws a host and an answer independently (§4); a per-try timeout expiry
    is a 504; the route timeout (clock starting at the router, §3) ends everything with
    504 at ``timeout``; when retries run out the last answer is returned (§4).
    """
    counts = [c for c, _ in upstreams]
    answers = [d for _, d in upstreams]
    per_try = policy.per_try
    if per_try is not None and timeout is not None and per_try >= timeout:
        per_try = None  # §3: a per-try timeout >= the route timeout is ignored
    out = Dist()

    def step(
        elapsed: float, timers: int, extra: float, done: int, tried: tuple[int, ...], prob: float
    ) -> None:
        for vi, q in enumerate(_pick(counts, tried, policy.previous_hosts, weights)):
            if q <= 0.0:
                continue
            answer = answers[vi]
            out.add_expectations(answer, prob * q)
            for r, s in answer.items():
                w = prob * q * s
                if per_try is not None and r.t >= per_try:
                    res = Resp(504, t=elapsed + per_try, timers=timers + 1, extra=extra, flag="UT")
                    retriable = policy.retries_per_try_timeout
                else:
                    res = replace(
                        r, t=elapsed + r.t, timers=timers + r.timers, extra=extra + r.extra
                    )
                    retriable = (
                        policy.retries_connect_failure
                        if r.flag == CONNECT_FAILURE
                        else policy.retries_status(r.status)
                    )
                if timeout is not None and res.t >= timeout:
                    out.add(Resp(504, t=timeout, timers=1, extra=extra, flag="UT"), w)
                    continue
                if retriable and done < policy.retries:
                    out.counters["upstream_rq_retry"] += w
                    nxt = list(tried)
                    nxt[vi] = min(nxt[vi] + 1, counts[vi])
                    step(
                        res.t,
                        res.timers,
                        res.extra + policy.max_backoff(done + 1),
                        done + 1,
                        tuple(nxt),
                        w,
                    )
                else:
                    out.add(res, w)

    step(0.0, 0, 0.0, 0, tuple(0 for _ in counts), 1.0)
    return out
