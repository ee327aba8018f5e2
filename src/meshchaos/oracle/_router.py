"""One proxy's route action: fault filter, then the router's attempts under timeouts.

docs/ISTIO_SEMANTICS.md §5: the fault filter runs in the caller's proxy before the router; an
abort never reaches the router (never retried, no mirror) and a delay is not counted by
the route timeout. §3/§4: the route timeout covers all attempts; per-try timeouts; the
retry policy (user ``retries`` or Istio's built-in default) and Envoy's retry backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshchaos.istio.model import HTTPFaultInjection, HTTPRetry
from meshchaos.oracle._dist import Dist, Resp

# §4 "Built-in default": 503 is NOT a retriable status since 1.24.
_DEFAULT_ON = frozenset(
    {"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"}
)
_BACKOFF_BASE = 0.025  # Envoy default retry backoff base (§4)
# Envoy re-draws a host up to 5 more times when previous_hosts rejects it (§4).
_HOST_DRAWS = 6


@dataclass(frozen=True)
class RetryPolicy:
    """The effective Envoy retry policy of a route."""

    retries: int
    on: frozenset[str]
    codes: frozenset[int] = frozenset()
    per_try: float | None = None
    previous_hosts: bool = True
    backoff: float = _BACKOFF_BASE

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


DEFAULT_RETRY = RetryPolicy(2, _DEFAULT_ON)
# Envoy's response flag for a connection that could not be made (a dead instance).
CONNECT_FAILURE = "UF"
NO_RETRY = RetryPolicy(0, frozenset(), previous_hosts=False)


def retry_policy(retries: HTTPRetry | None) -> RetryPolicy:
    """§4 ``ConvertPolicy``: none -> default; attempts <= 0 -> no policy; integer tokens of
    ``retryOn`` become retriable status codes."""
    if retries is None:
        return DEFAULT_RETRY
    if retries.attempts <= 0:
        return NO_RETRY
    tokens = [t.strip() for t in (retries.retry_on or "").split(",") if t.strip()]
    on, codes = DEFAULT_RETRY.on, DEFAULT_RETRY.codes
    if tokens:
        on = frozenset(t for t in tokens if not t.isdigit())
        codes = frozenset(int(t) for t in tokens if t.isdigit())
        if codes:
            on = on | {"retriable-status-codes"}
    return RetryPolicy(
        retries=retries.attempts,
        on=on,
        codes=codes,
        per_try=retries.per_try_timeout,
        previous_hosts=retries.retry_ignore_previous_hosts is not False,
        backoff=retries.backoff or _BACKOFF_BASE,
    )


def million(percent: float) -> float:
    """Istio's Percent -> FractionalPercent MILLION mapping, truncating like Go (§5)."""
    return int(percent * 10000) / 1_000_000


def fault_shares(fault: HTTPFaultInjection | None) -> tuple[float, float, float, int, str]:
    """(delay probability, delay seconds, abort probability, abort status, note)."""
    pd = d = pa = 0.0
    status, note = 200, ""
    if fault is None:
        return pd, d, pa, status, note
    if fault.delay is not None and fault.delay.fixed_delay is not None:
        d = fault.delay.fixed_delay
        if fault.delay.percentage is not None:
            pd = million(fault.delay.percentage)
        elif fault.delay.percent is not None:
            pd = fault.delay.percent / 100
        # §5: neither set -> 0 %, no delay.
    if fault.abort is not None and fault.abort.percentage is not None:
        # §5: an abort without percentage is 0 % (never aborts).
        pa = million(fault.abort.percentage)
        if fault.abort.http_status is not None:
            status = fault.abort.http_status
        elif fault.abort.grpc_status is not None:
            # §5: gRPC aborts are HTTP 200 + grpc-status; clients classify by HTTP status.
            note = f"gRPC abort {fault.abort.grpc_status} is HTTP 200 + grpc-status"
    return pd, d, pa, status, note


def apply_fault(fault: HTTPFaultInjection | None, inner: Dist) -> Dist:
    """The fault filter in front of the router's result ``inner`` (§5)."""
    pd, d, pa, status, _ = fault_shares(fault)
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
