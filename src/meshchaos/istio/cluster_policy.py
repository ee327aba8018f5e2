"""What a DestinationRule gives one cluster, as istiod applies it (docs/ISTIO_SEMANTICS.md
§0, §7): the port-level and subset merge, the circuit-breaker thresholds and the outlier
detection Envoy runs with.

Defined once for both users: the local translator (``meshchaos.mesh.local``) renders these
answers as Envoy clusters and the oracle (``meshchaos.oracle``) bounds pools and ejections
with them. Route-level meaning is :mod:`meshchaos.istio.route_policy`, hosts
:mod:`meshchaos.istio.hosts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshchaos.istio.model import (
    ConnectionPoolSettings,
    DestinationRule,
    LoadBalancerSettings,
    OutlierDetection,
    TrafficPolicy,
)

__all__ = [
    "MAX_UINT32",
    "CircuitBreakerLimits",
    "EffectiveTrafficPolicy",
    "EjectionSettings",
    "circuit_breaker_limits",
    "effective_traffic_policy",
    "ejection_settings",
    "inbound_connection_pool",
]


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
