"""What a valid Istio resource means once istiod has applied it: defined once, here.

The local translator (``meshchaos.mesh.local``) renders these answers as Envoy JSON and the
oracle (``meshchaos.oracle``) reasons with them, so the two cannot drift apart. Each function
takes the typed model of :mod:`meshchaos.istio.model` and returns plain values:

* the traffic policy a cluster gets: :func:`effective_traffic_policy`,
  :func:`inbound_connection_pool`, :func:`circuit_breaker_limits`, :func:`ejection_settings`
  (docs/ISTIO_SEMANTICS.md §0, §7);
* the retry policy and timeout of a route: :func:`effective_retry_policy`,
  :func:`route_timeout` (§3, §4);
* fault and mirror fractions: :func:`effective_fault`, :func:`mirror_fraction` (§5, §6);
* whether a route exists on a proxy at all: :func:`source_selects` (§1).

Which service a host names, and which DestinationRule applies to it, is
:mod:`meshchaos.istio.hosts`. Only istiod's decisions live here. How Envoy then behaves at
run time (which failures a ``retry_on`` token covers, backoff jitter, circuit-breaker
leeway) is the oracle's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from meshchaos.istio.model import (
    ConnectionPoolSettings,
    DestinationRule,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    LoadBalancerSettings,
    OutlierDetection,
    TrafficPolicy,
)
from meshchaos.istio.names import GRPC_STATUS_CODES, KNOWN_HTTP_STATUSES

__all__ = [
    "DEFAULT_RETRY_ON",
    "MAX_UINT32",
    "CircuitBreakerLimits",
    "EffectiveFault",
    "EffectiveTrafficPolicy",
    "EjectionSettings",
    "FaultAbort",
    "FaultDelay",
    "Fraction",
    "RetryPolicy",
    "circuit_breaker_limits",
    "effective_fault",
    "effective_retry_policy",
    "effective_traffic_policy",
    "ejection_settings",
    "inbound_connection_pool",
    "int_percent_fraction",
    "mirror_fraction",
    "percent_fraction",
    "route_timeout",
    "source_selects",
]


# ----------------------------------------------------------------- traffic policy (§7)
@dataclass(frozen=True)
class EffectiveTrafficPolicy:
    """The parts of a traffic policy that reach one cluster after the port and subset merge.
    ``None`` means unset: Istio's and Envoy's defaults apply."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None


def _port_level(tp: TrafficPolicy, port: int) -> tuple[EffectiveTrafficPolicy, bool]:
    """The policy for ``port`` and whether a port entry matched. §7: a matching
    ``portLevelSettings`` entry replaces the whole policy and inherits nothing."""
    for entry in tp.port_level_settings:
        if entry.port.number == port:
            policy = EffectiveTrafficPolicy(
                entry.load_balancer, entry.connection_pool, entry.outlier_detection
            )
            return policy, True
    return EffectiveTrafficPolicy(tp.load_balancer, tp.connection_pool, tp.outlier_detection), False


def effective_traffic_policy(
    dr: DestinationRule | None, subset: str | None, port: int
) -> EffectiveTrafficPolicy:
    """The policy of cluster ``outbound|port|subset|host`` under ``dr`` (§7 merge rules).

    The top-level policy is resolved for the port first. A subset's policy then overrides
    each part it sets; if the subset has its own entry for the port, that entry replaces
    all parts, including those the top level set and the entry leaves unset (so a subset
    port entry with only a load balancer leaves the cluster with no connection pool).
    A subset the rule does not declare gets the top-level policy.
    """
    if dr is None:
        return EffectiveTrafficPolicy()
    top = _port_level(dr.traffic_policy, port)[0] if dr.traffic_policy else None
    own = next((s.traffic_policy for s in dr.subsets if s.name == subset), None)
    if own is None:
        return top or EffectiveTrafficPolicy()
    sub, has_port = _port_level(own, port)
    if top is None or has_port:
        return sub
    return EffectiveTrafficPolicy(
        sub.load_balancer if sub.load_balancer is not None else top.load_balancer,
        sub.connection_pool if sub.connection_pool is not None else top.connection_pool,
        sub.outlier_detection if sub.outlier_detection is not None else top.outlier_detection,
    )


def inbound_connection_pool(dr: DestinationRule | None, port: int) -> ConnectionPoolSettings | None:
    """The pool of the server sidecar's ``inbound|port||`` cluster: the rule's top-level or
    port-level pool, never a subset's; no load balancer or outlier detection inbound (§0)."""
    if dr is None or dr.traffic_policy is None:
        return None
    return _port_level(dr.traffic_policy, port)[0].connection_pool


# Istio's circuit-breaker defaults (§7 "Connection pool"): 2^32-1, not Envoy's 1024/3.
MAX_UINT32 = 4294967295


@dataclass(frozen=True)
class CircuitBreakerLimits:
    """A cluster's circuit-breaker thresholds; :data:`MAX_UINT32` means unlimited."""

    max_connections: int = MAX_UINT32
    max_pending_requests: int = MAX_UINT32
    max_requests: int = MAX_UINT32
    max_retries: int = MAX_UINT32


def _positive(value: int | None) -> int:
    # §7: a pool value is applied only when > 0; 0 means unset in Istio's API.
    return value if value is not None and value > 0 else MAX_UINT32


def circuit_breaker_limits(pool: ConnectionPoolSettings | None) -> CircuitBreakerLimits:
    """``applyConnectionPool``'s thresholds for ``pool`` (§7 table)."""
    http = pool.http if pool is not None else None
    tcp = pool.tcp if pool is not None else None
    return CircuitBreakerLimits(
        max_connections=_positive(tcp.max_connections if tcp else None),
        max_pending_requests=_positive(http.http1_max_pending_requests if http else None),
        max_requests=_positive(http.http2_max_requests if http else None),
        max_retries=_positive(http.max_retries if http else None),
    )


# Envoy's outlier-detection defaults for fields Istio leaves unset (§7).
ENVOY_CONSECUTIVE_5XX = 5
ENVOY_INTERVAL_S = 10.0
ENVOY_BASE_EJECTION_S = 30.0
ENVOY_MAX_EJECTION_PERCENT = 10


@dataclass(frozen=True)
class EjectionSettings:
    """What Envoy's outlier detector runs with for a DestinationRule ``outlierDetection``.
    A threshold of 0 means that detector is off."""

    consecutive_5xx: int
    consecutive_gateway_errors: int
    interval: float
    base_ejection_time: float
    max_ejection_percent: int
    min_health_percent: int


def ejection_settings(od: OutlierDetection) -> EjectionSettings:
    """``applyOutlierDetection`` plus Envoy's defaults (§7): ``consecutive_5xx`` is 5 and
    enforced when unset, even if only gateway errors are configured; the gateway detector is
    enforced only when set; ``maxEjectionPercent`` is copied only when > 0, else Envoy's 10;
    the panic threshold is ``minHealthPercent`` (default 0, panic disabled)."""
    five = od.consecutive_5xx_errors
    return EjectionSettings(
        consecutive_5xx=ENVOY_CONSECUTIVE_5XX if five is None else five,
        consecutive_gateway_errors=od.consecutive_gateway_errors or 0,
        interval=ENVOY_INTERVAL_S if od.interval is None else od.interval,
        base_ejection_time=(
            ENVOY_BASE_EJECTION_S if od.base_ejection_time is None else od.base_ejection_time
        ),
        max_ejection_percent=od.max_ejection_percent or ENVOY_MAX_EJECTION_PERCENT,
        min_health_percent=od.min_health_percent or 0,
    )


# -------------------------------------------------------------- timeout, retries (§3, §4)
def route_timeout(route: HTTPRoute | None) -> float | None:
    """The route timeout in seconds; ``None`` is disabled. §3: Istio always writes the field
    (``0s`` when the VirtualService sets none), so Envoy's 15 s default never applies."""
    return route.timeout if route is not None else None


DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_ATOI = re.compile(r"^[+-]?[0-9]+$")  # Go's strconv.Atoi grammar


@dataclass(frozen=True)
class RetryPolicy:
    """A route's Envoy retry policy, as istiod writes it (§4).

    ``retry_on`` is the exact string istiod emits (it may start with a comma when
    ``retryOn`` held only status codes; Envoy skips empty tokens). ``backoff`` ``None``
    leaves Envoy's 25 ms base interval.
    """

    num_retries: int = 2
    retry_on: str = DEFAULT_RETRY_ON
    retriable_status_codes: tuple[int, ...] = ()
    per_try_timeout: float | None = None
    previous_hosts: bool = True
    host_selection_retry_max_attempts: int = 5
    retry_remote_localities: bool = False
    backoff: float | None = None

    @property
    def conditions(self) -> frozenset[str]:
        """The ``retry_on`` tokens, as Envoy reads them."""
        return frozenset(t for t in self.retry_on.split(",") if t)


def _parse_retry_on(text: str) -> tuple[str, tuple[int, ...]]:
    """§4 ``retryOn`` parsing: split on ``,`` and trim; integers with a known HTTP status
    text become retriable status codes, every other token stays in ``retry_on``."""
    tokens: list[str] = []
    codes: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if _ATOI.match(part) and int(part) in KNOWN_HTTP_STATUSES:
            codes.append(int(part))
        else:
            tokens.append(part)
    return ",".join(tokens), tuple(codes)


def effective_retry_policy(
    retries: HTTPRetry | None, *, consistent_hash: bool = False
) -> RetryPolicy | None:
    """The retry policy of a route with ``retries`` (``None``: unset); ``None`` is no policy.

    §4: unset -> Istio's built-in default (2 retries on connect-failure, refused-stream,
    unavailable, cancelled, retriable-status-codes with no codes, previous_hosts, 5 host
    draws); ``attempts <= 0`` -> no retry policy at all; otherwise the default with the
    user's fields over it. ``consistent_hash``: the route's single destination balances by
    consistent hash, which drops the previous_hosts predicate (a hashed request must stay
    on its host) unless ``retryIgnorePreviousHosts`` asks for it.
    """
    policy = RetryPolicy(previous_hosts=not consistent_hash)
    if retries is None:
        return policy
    if retries.attempts <= 0:
        return None
    retry_on, codes = policy.retry_on, policy.retriable_status_codes
    if retries.retry_on:
        retry_on, codes = _parse_retry_on(retries.retry_on)
        if codes and "retriable-status-codes" not in retry_on:
            retry_on += ",retriable-status-codes"
    previous = policy.previous_hosts
    if retries.retry_ignore_previous_hosts is not None:
        previous = retries.retry_ignore_previous_hosts
    return RetryPolicy(
        num_retries=retries.attempts,
        retry_on=retry_on,
        retriable_status_codes=codes,
        per_try_timeout=retries.per_try_timeout,
        previous_hosts=previous,
        retry_remote_localities=bool(retries.retry_remote_localities),
        backoff=retries.backoff,
    )


# ---------------------------------------------------------------- fractions (§5, §6)
@dataclass(frozen=True)
class Fraction:
    """An Envoy ``FractionalPercent``: ``numerator`` over HUNDRED or MILLION."""

    numerator: int
    denominator: Literal["HUNDRED", "MILLION"]

    @property
    def probability(self) -> float:
        scale = 100 if self.denominator == "HUNDRED" else 1_000_000
        return min(1.0, self.numerator / scale)


def percent_fraction(value: float) -> Fraction:
    """An Istio ``Percent`` -> MILLION, truncating like Go's ``uint32(value * 10000)`` (§5):
    0.1 % -> 1000/1e6, 0.57 -> 5699 (float64 0.57 x 10000 is 5699.99...)."""
    return Fraction(int(value * 10000), "MILLION")


def int_percent_fraction(value: int) -> Fraction:
    """A deprecated integer percent -> HUNDRED (§5, §6)."""
    return Fraction(value, "HUNDRED")


@dataclass(frozen=True)
class FaultDelay:
    seconds: float
    fraction: Fraction


@dataclass(frozen=True)
class FaultAbort:
    """An abort: ``http_status``, or ``grpc_status`` (numeric; HTTP 200 + grpc-status)."""

    fraction: Fraction
    http_status: int | None = None
    grpc_status: int | None = None
    grpc_name: str | None = None


@dataclass(frozen=True)
class EffectiveFault:
    """The fault a route's fault filter runs; ``dropped`` names what istiod leaves out."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None
    dropped: tuple[str, ...] = ()


def effective_fault(fault: HTTPFaultInjection | None) -> EffectiveFault | None:
    """``TranslateFault`` (§5); ``None`` when the route has no fault.

    Delay: ``percentage`` (MILLION) if set, else the deprecated ``percent`` (HUNDRED); with
    neither (or ``percent: 0``) the delay is 0 % and left out, as is a delay without
    ``fixedDelay``. Abort: no ``percentage`` is an explicit 0 % (Envoy reads an unset one
    as 0, never aborting); an abort with no HTTP or gRPC status is dropped by istiod.
    """
    if fault is None:
        return None
    delay = None
    d = fault.delay
    if d is not None and d.fixed_delay is not None:
        if d.percentage is not None:
            delay = FaultDelay(d.fixed_delay, percent_fraction(d.percentage))
        elif d.percent:
            delay = FaultDelay(d.fixed_delay, int_percent_fraction(d.percent))
    abort = None
    dropped: tuple[str, ...] = ()
    a = fault.abort
    if a is not None:
        pct = percent_fraction(a.percentage) if a.percentage is not None else Fraction(0, "HUNDRED")
        if a.http_status is not None:
            abort = FaultAbort(pct, http_status=a.http_status)
        elif a.grpc_status is not None:
            abort = FaultAbort(
                pct, grpc_status=GRPC_STATUS_CODES[a.grpc_status], grpc_name=a.grpc_status
            )
        else:
            dropped = ("fault.abort without httpStatus/grpcStatus is dropped (as istiod)",)
    return EffectiveFault(delay, abort, dropped)


def mirror_fraction(percentage: float | None) -> Fraction | None:
    """A mirror's share (§6): absent -> 100/HUNDRED, explicit 0 -> no mirror, else MILLION."""
    if percentage is None:
        return int_percent_fraction(100)
    if percentage <= 0:
        return None
    return percent_fraction(percentage)


# ------------------------------------------------------------------ proxy selectors (§1)
def source_selects(
    match: HTTPMatchRequest | None,
    proxy_labels: Mapping[str, str],
    proxy_namespace: str,
    gateway_bound: Callable[[str], bool],
) -> bool:
    """Whether the route of ``match`` is generated for a proxy at all (``sourceMatchHTTP``).

    §1: match-level ``gateways``, when given, decide alone (``gateway_bound`` says whether
    the proxy is one of them, as the caller names gateways); otherwise ``sourceLabels`` must
    be a subset of the proxy's labels and ``sourceNamespace``, if set, its namespace.
    """
    if match is None:
        return True
    if match.gateways:
        return any(gateway_bound(g) for g in match.gateways)
    if any(proxy_labels.get(k) != v for k, v in match.source_labels.items()):
        return False
    return match.source_namespace in (None, "", proxy_namespace)
