"""DestinationRule: host, subsets, traffic policies (``validation.go ValidateDestinationRule``)."""

from __future__ import annotations

from typing import Any

from meshchaos.istio._fields import Reader
from meshchaos.istio.durations import check_duration
from meshchaos.istio.model import (
    ConnectionPoolSettings,
    DestinationRule,
    HTTPSettings,
    Metadata,
    OutlierDetection,
    PortSelector,
    PortTrafficPolicy,
    Subset,
    TCPSettings,
    TrafficPolicy,
)
from meshchaos.istio.names import check_labels, check_port, check_wildcard_domain, is_dns1123_label
from meshchaos.istio.policies import parse_load_balancer

# validateTrafficPolicy: a policy needs at least one of these.
_POLICY_FIELDS = (
    "outlierDetection",
    "connectionPool",
    "loadBalancer",
    "tls",
    "portLevelSettings",
    "tunnel",
    "proxyProtocol",
)
_PORT_POLICY_FIELDS = ("outlierDetection", "connectionPool", "loadBalancer", "tls")
H2_UPGRADE_POLICIES = ("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE")


def parse_destination_rule(
    spec: dict[str, Any], metadata: Metadata, r: Reader, source: str, raw: dict[str, Any]
) -> DestinationRule | None:
    """Build a DestinationRule from its ``spec``; ``None`` when any problem was reported."""
    before = r.problems.count
    host = r.string(spec.get("host"), "spec.host")
    if host is not None or spec.get("host") is None:
        problem = check_wildcard_domain(host or "")
        if problem is not None:
            r.add("spec.host", problem)
    policy = parse_traffic_policy(spec.get("trafficPolicy"), "spec.trafficPolicy", r)
    subsets = []
    seen: set[str] = set()
    for i, item in enumerate(r.seq(spec.get("subsets"), "spec.subsets")):
        subset = _parse_subset(item, f"spec.subsets[{i}]", r, seen)
        if subset is not None:
            subsets.append(subset)
    export_to = r.str_list(spec.get("exportTo"), "spec.exportTo")
    if r.problems.count != before or not host:
        return None
    return DestinationRule(
        metadata=metadata,
        host=host,
        traffic_policy=policy,
        subsets=tuple(subsets),
        export_to=export_to,
        source=source,
        raw=raw,
    )


def _parse_subset(value: Any, path: str, r: Reader, seen: set[str]) -> Subset | None:
    raw = r.mapping(value, path)
    if raw is None:
        if value is None:
            r.add(path, "subset may not be null")
        return None
    name = r.string(raw.get("name"), f"{path}.name") or ""
    if not name:
        r.add(f"{path}.name", "subset name cannot be empty")
    elif not is_dns1123_label(name):
        r.add(f"{path}.name", f"subset name is invalid: {name}")
    elif name in seen:
        r.add(f"{path}.name", f"duplicate subset names: {name}")
    seen.add(name)
    labels = r.str_map(raw.get("labels"), f"{path}.labels")
    for problem in check_labels(labels):
        r.add(f"{path}.labels", problem)
    policy = parse_traffic_policy(raw.get("trafficPolicy"), f"{path}.trafficPolicy", r)
    return Subset(name=name, labels=labels, traffic_policy=policy)


def _is_set(raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key)
    return value is not None and value != []


def parse_traffic_policy(value: Any, path: str, r: Reader) -> TrafficPolicy | None:
    """``validateTrafficPolicy``; ``{}`` is rejected (a policy needs at least one field)."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    if not any(_is_set(raw, k) for k in _POLICY_FIELDS):
        r.add(path, "traffic policy must have at least one field")
        return None
    if _is_set(raw, "tunnel") and _is_set(raw, "proxyProtocol"):
        r.add(path, "tunnel and proxyProtocol must not be set together")
    outlier = _parse_outlier(raw.get("outlierDetection"), f"{path}.outlierDetection", r)
    pool = _parse_pool(raw.get("connectionPool"), f"{path}.connectionPool", r)
    lb = parse_load_balancer(raw.get("loadBalancer"), f"{path}.loadBalancer", r)
    ports = []
    for i, item in enumerate(r.seq(raw.get("portLevelSettings"), f"{path}.portLevelSettings")):
        port_policy = _parse_port_policy(item, f"{path}.portLevelSettings[{i}]", r)
        if port_policy is not None:
            ports.append(port_policy)
    return TrafficPolicy(
        load_balancer=lb,
        connection_pool=pool,
        outlier_detection=outlier,
        port_level_settings=tuple(ports),
    )


def _parse_port_policy(value: Any, path: str, r: Reader) -> PortTrafficPolicy | None:
    raw = r.mapping(value, path)
    if raw is None:
        if value is None:
            r.add(path, "traffic policy may not be null")
        return None
    port = None
    port_raw = r.mapping(raw.get("port"), f"{path}.port")
    if port_raw is None:
        if raw.get("port") is None:
            r.add(f"{path}.port", "portTrafficPolicy must have valid port")
    else:
        number = r.integer(port_raw.get("number", 0), f"{path}.port.number")
        if number is not None:
            problem = check_port(number)
            if problem is not None:
                r.add(f"{path}.port.number", problem)
            else:
                port = PortSelector(number)
    if not any(_is_set(raw, k) for k in _PORT_POLICY_FIELDS):
        r.add(path, "port traffic policy must have at least one field")
        return None
    outlier = _parse_outlier(raw.get("outlierDetection"), f"{path}.outlierDetection", r)
    pool = _parse_pool(raw.get("connectionPool"), f"{path}.connectionPool", r)
    lb = parse_load_balancer(raw.get("loadBalancer"), f"{path}.loadBalancer", r)
    if port is None:
        return None
    return PortTrafficPolicy(
        port=port, load_balancer=lb, connection_pool=pool, outlier_detection=outlier
    )


def _parse_pool(value: Any, path: str, r: Reader) -> ConnectionPoolSettings | None:
    """``validateConnectionPool``: at least http or tcp, no negative values, valid durations."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    if raw.get("http") is None and raw.get("tcp") is None:
        r.add(path, "connection pool must have at least one field")
        return None
    return ConnectionPoolSettings(
        tcp=_parse_tcp(raw.get("tcp"), f"{path}.tcp", r),
        http=_parse_http(raw.get("http"), f"{path}.http", r),
    )


def _parse_tcp(value: Any, path: str, r: Reader) -> TCPSettings | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    idle: float | None = None
    idle_ns = r.duration_ns(raw.get("idleTimeout"), f"{path}.idleTimeout")
    if idle_ns is not None:
        # istiod skips the check when the value is 0 whole milliseconds (Go's Milliseconds()
        # truncates toward zero): a tcp idleTimeout of 0s disables the timeout.
        problem = None if abs(idle_ns) < 1_000_000 else check_duration(idle_ns)
        if problem is not None:
            r.add(f"{path}.idleTimeout", problem)
        else:
            idle = idle_ns / 1e9
    keepalive = r.mapping(raw.get("tcpKeepalive"), f"{path}.tcpKeepalive")
    if keepalive is not None:
        r.integer(keepalive.get("probes"), f"{path}.tcpKeepalive.probes", minimum=0)
        r.duration(keepalive.get("time"), f"{path}.tcpKeepalive.time")
        r.duration(keepalive.get("interval"), f"{path}.tcpKeepalive.interval")
    return TCPSettings(
        max_connections=r.integer(raw.get("maxConnections"), f"{path}.maxConnections", minimum=0),
        connect_timeout=r.duration(raw.get("connectTimeout"), f"{path}.connectTimeout"),
        max_connection_duration=r.duration(
            raw.get("maxConnectionDuration"), f"{path}.maxConnectionDuration"
        ),
        idle_timeout=idle,
    )


def _parse_http(value: Any, path: str, r: Reader) -> HTTPSettings | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None

    def count(key: str) -> int | None:
        return r.integer(raw.get(key), f"{path}.{key}", minimum=0)

    upgrade = r.string(raw.get("h2UpgradePolicy"), f"{path}.h2UpgradePolicy")
    if upgrade is not None and upgrade not in H2_UPGRADE_POLICIES:
        r.add(f"{path}.h2UpgradePolicy", f"must be one of {', '.join(H2_UPGRADE_POLICIES)}")
    client_protocol = bool(r.boolean(raw.get("useClientProtocol"), f"{path}.useClientProtocol"))
    if upgrade == "UPGRADE" and client_protocol:
        r.add(path, "use client protocol must not be true when H2UpgradePolicy is UPGRADE")
    return HTTPSettings(
        http1_max_pending_requests=count("http1MaxPendingRequests"),
        http2_max_requests=count("http2MaxRequests"),
        max_requests_per_connection=count("maxRequestsPerConnection"),
        max_retries=count("maxRetries"),
        idle_timeout=r.duration(raw.get("idleTimeout"), f"{path}.idleTimeout"),
        h2_upgrade_policy=upgrade,
        use_client_protocol=client_protocol,
        max_concurrent_streams=count("maxConcurrentStreams"),
    )


def _parse_outlier(value: Any, path: str, r: Reader) -> OutlierDetection | None:
    """``validateOutlierDetection``."""
    raw = r.mapping(value, path)
    if raw is None:
        return None

    def count(key: str) -> int | None:
        return r.integer(raw.get(key), f"{path}.{key}", minimum=0)

    split = bool(
        r.boolean(
            raw.get("splitExternalLocalOriginErrors"), f"{path}.splitExternalLocalOriginErrors"
        )
    )
    local_origin = count("consecutiveLocalOriginFailures")
    if local_origin and not split:
        r.add(
            f"{path}.consecutiveLocalOriginFailures",
            "outlier detection consecutive local origin failures is specified, "
            "but split external local origin errors is set to false",
        )
    percents = {}
    for key in ("maxEjectionPercent", "minHealthPercent"):
        number = r.integer(raw.get(key), f"{path}.{key}")
        if number is not None and not 0 <= number <= 100:
            r.add(f"{path}.{key}", f"percentage {number} is not in range 0..100")
        percents[key] = number
    count("consecutiveErrors")  # deprecated and ignored by istiod; only its type matters
    return OutlierDetection(
        consecutive_5xx_errors=count("consecutive5xxErrors"),
        consecutive_gateway_errors=count("consecutiveGatewayErrors"),
        split_external_local_origin_errors=split,
        consecutive_local_origin_failures=local_origin,
        interval=r.duration(raw.get("interval"), f"{path}.interval"),
        base_ejection_time=r.duration(raw.get("baseEjectionTime"), f"{path}.baseEjectionTime"),
        max_ejection_percent=percents["maxEjectionPercent"],
        min_health_percent=percents["minHealthPercent"],
    )
