"""DestinationRule -> Envoy clusters, as istiod's cluster builder makes them.

Sources (istio/istio 1.29): ``pilot/pkg/networking/core/cluster_builder.go``
(``buildInboundCluster``, default circuit-breaker thresholds), ``cluster_traffic_policy.go``
(``applyConnectionPool``, ``applyLoadBalancer``, ``applyOutlierDetection``). See
docs/ISTIO_SEMANTICS.md §7. Which policy a cluster gets (the port-level and subset merge)
and its thresholds are :mod:`meshchaos.istio.cluster_policy`; this module renders them.

Clusters are STATIC with inline endpoints: the endpoints of an outbound cluster are the
sidecar inbound listeners (127.0.0.1:<port>) of the matching instances, like pod IPs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshchaos.istio.cluster_policy import (
    circuit_breaker_limits,
    effective_traffic_policy,
    inbound_connection_pool,
)
from meshchaos.istio.model import (
    ConnectionPoolSettings,
    DestinationRule,
    LoadBalancerSettings,
    LoadBalancerSimple,
    OutlierDetection,
)
from meshchaos.mesh.local._xds_common import (
    HTTP_PROTOCOL_OPTIONS,
    cluster_name,
    duration,
    socket_address,
    typed,
)
from meshchaos.mesh.local.service_registry import Endpoint

DEFAULT_CONNECT_TIMEOUT = 10.0  # meshConfig.connectTimeout default (pkg/config/mesh/mesh.go)
DEFAULT_IDLE_TIMEOUT = 3600.0  # Envoy's upstream idle timeout, written explicitly


def apply_connection_pool(cluster: dict[str, Any], pool: ConnectionPoolSettings | None) -> None:
    """``applyConnectionPool``: thresholds at 2^32-1 unless the DR sets a value > 0."""
    limits = circuit_breaker_limits(pool)
    thresholds: dict[str, Any] = {
        "max_connections": limits.max_connections,
        "max_pending_requests": limits.max_pending_requests,
        "max_requests": limits.max_requests,
        "max_retries": limits.max_retries,
    }
    common: dict[str, Any] = {"idle_timeout": duration(DEFAULT_IDLE_TIMEOUT)}
    connect_timeout = DEFAULT_CONNECT_TIMEOUT
    protocol: dict[str, Any] = {"explicit_http_config": {"http_protocol_options": {}}}
    http = pool.http if pool else None
    tcp = pool.tcp if pool else None
    if http is not None:
        if http.max_requests_per_connection:
            common["max_requests_per_connection"] = http.max_requests_per_connection
        if http.idle_timeout is not None:
            common["idle_timeout"] = duration(http.idle_timeout)
        if http.use_client_protocol:
            protocol = {
                "use_downstream_protocol_config": {
                    "http_protocol_options": {},
                    "http2_protocol_options": {},
                }
            }
        elif http.h2_upgrade_policy == "UPGRADE":
            h2: dict[str, Any] = {}
            if http.max_concurrent_streams:
                h2["max_concurrent_streams"] = http.max_concurrent_streams
            protocol = {"explicit_http_config": {"http2_protocol_options": h2}}
    if tcp is not None:
        if tcp.connect_timeout is not None:
            connect_timeout = tcp.connect_timeout
        if tcp.idle_timeout is not None and (http is None or http.idle_timeout is None):
            common["idle_timeout"] = duration(tcp.idle_timeout)
        if tcp.max_connection_duration is not None:
            common["max_connection_duration"] = duration(tcp.max_connection_duration)
    cluster["connect_timeout"] = duration(connect_timeout)
    cluster["circuit_breakers"] = {"thresholds": [thresholds]}
    cluster["typed_extension_protocol_options"] = {
        HTTP_PROTOCOL_OPTIONS: typed(
            HTTP_PROTOCOL_OPTIONS, common_http_protocol_options=common, **protocol
        )
    }


def apply_load_balancer(
    cluster: dict[str, Any], lb: LoadBalancerSettings | None, warnings: list[str]
) -> None:
    """``applyLoadBalancer``: LEAST_REQUEST by default; consistentHash -> RING_HASH/MAGLEV."""
    cluster["lb_policy"] = "LEAST_REQUEST"
    if lb is None:
        return
    if lb.consistent_hash is not None:
        ch = lb.consistent_hash
        if ch.maglev_table_size is not None:
            cluster["lb_policy"] = "MAGLEV"
            if ch.maglev_table_size:
                cluster["maglev_lb_config"] = {"table_size": ch.maglev_table_size}
        else:
            cluster["lb_policy"] = "RING_HASH"
            cluster["ring_hash_lb_config"] = {"minimum_ring_size": ch.minimum_ring_size or 1024}
        return
    simple = lb.simple
    if simple is LoadBalancerSimple.ROUND_ROBIN:
        cluster["lb_policy"] = "ROUND_ROBIN"
    elif simple is LoadBalancerSimple.RANDOM:
        cluster["lb_policy"] = "RANDOM"
    elif simple is LoadBalancerSimple.PASSTHROUGH:
        # ORIGINAL_DST needs real destination addresses, which a loopback mesh does not have.
        warnings.append(
            f"{cluster['name']}: loadBalancer PASSTHROUGH not emulated; using LEAST_REQUEST"
        )
    if lb.warmup_duration is not None and cluster["lb_policy"] in ("ROUND_ROBIN", "LEAST_REQUEST"):
        key = (
            "round_robin_lb_config"
            if simple is LoadBalancerSimple.ROUND_ROBIN
            else "least_request_lb_config"
        )
        cluster[key] = {"slow_start_config": {"slow_start_window": duration(lb.warmup_duration)}}


def apply_outlier_detection(cluster: dict[str, Any], od: OutlierDetection | None) -> None:
    """``applyOutlierDetection``; unset fields keep Envoy's defaults (5 x 5xx, 10 s, 30 s, 10 %)."""
    if od is None:
        return
    out: dict[str, Any] = {"enforcing_success_rate": 0}  # success-rate ejection disabled
    if od.consecutive_5xx_errors is not None:
        out["consecutive_5xx"] = od.consecutive_5xx_errors
        out["enforcing_consecutive_5xx"] = 100 if od.consecutive_5xx_errors > 0 else 0
    if od.consecutive_gateway_errors is not None:
        out["consecutive_gateway_failure"] = od.consecutive_gateway_errors
        out["enforcing_consecutive_gateway_failure"] = (
            100 if od.consecutive_gateway_errors > 0 else 0
        )
    if od.interval is not None:
        out["interval"] = duration(od.interval)
    if od.base_ejection_time is not None:
        out["base_ejection_time"] = duration(od.base_ejection_time)
    if od.max_ejection_percent is not None and od.max_ejection_percent > 0:
        out["max_ejection_percent"] = od.max_ejection_percent
    if od.split_external_local_origin_errors:
        out["split_external_local_origin_errors"] = True
        if od.consecutive_local_origin_failures:
            out["consecutive_local_origin_failure"] = od.consecutive_local_origin_failures
            out["enforcing_consecutive_local_origin_failure"] = 100
        out["enforcing_local_origin_success_rate"] = 0
    cluster["outlier_detection"] = out
    # Istio always writes the panic threshold when outlier detection is on (default 0 =
    # panic disabled), overriding Envoy's 50 %.
    cluster.setdefault("common_lb_config", {})["healthy_panic_threshold"] = {
        "value": float(od.min_health_percent or 0)
    }


def _load_assignment(name: str, ports: Sequence[int]) -> dict[str, Any]:
    lb_endpoints = [{"endpoint": {"address": socket_address(p)}} for p in ports]
    return {"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}] if ports else []}


def outbound_cluster(
    fqdn: str,
    port: int,
    subset: str | None,
    subset_labels: Mapping[str, str],
    dr: DestinationRule | None,
    endpoints: Sequence[Endpoint],
    warnings: list[str],
) -> dict[str, Any]:
    """One ``outbound|port|subset|fqdn`` cluster with its matching endpoints."""
    name = cluster_name(port, subset, fqdn)
    service = fqdn.split(".", 1)[0]
    ports = sorted(
        e.port
        for e in endpoints
        if e.service == service
        and e.service_port == port
        and all(e.labels.get(k) == v for k, v in subset_labels.items())
    )
    cluster: dict[str, Any] = {"name": name, "type": "STATIC"}
    policy = effective_traffic_policy(dr, subset, port)
    apply_connection_pool(cluster, policy.connection_pool)
    apply_load_balancer(cluster, policy.load_balancer, warnings)
    apply_outlier_detection(cluster, policy.outlier_detection)
    cluster["load_assignment"] = _load_assignment(name, ports)
    return cluster


def inbound_cluster(port: int, app_port: int | None, dr: DestinationRule | None) -> dict[str, Any]:
    """``inbound|<port>||`` -> the app; only the DR's connection pool applies (no LB, no OD)."""
    name = f"inbound|{port}||"
    pool = inbound_connection_pool(dr, port)
    cluster: dict[str, Any] = {"name": name, "type": "STATIC"}
    apply_connection_pool(cluster, pool)
    # The inbound protocol follows the port, not the DR: our apps speak HTTP/1.1 only.
    options = cluster["typed_extension_protocol_options"][HTTP_PROTOCOL_OPTIONS]
    options.pop("use_downstream_protocol_config", None)
    options["explicit_http_config"] = {"http_protocol_options": {}}
    cluster["load_assignment"] = _load_assignment(name, [app_port] if app_port else [])
    return cluster
