"""Typed model of the Istio networking resources meshchaos understands.

Field names follow the Istio API in snake_case (``perTryTimeout`` -> ``per_try_timeout``).
Durations are seconds as ``float``; percentages are ``float`` in [0, 100]. ``None``
means "not set", which matters: Istio treats an unset field differently from a zero
one in several places (fault percentages, retries, connection pool values).

Instances are produced by :mod:`meshchaos.istio.parse`, which validates as istiod's
webhook does; code elsewhere may assume every instance is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class MatchKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"


@dataclass(frozen=True)
class StringMatch:
    """An Istio StringMatch. ``kind is None`` means presence only (empty match)."""

    kind: MatchKind | None
    value: str = ""


@dataclass(frozen=True)
class HTTPMatchRequest:
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = field(default_factory=dict)
    without_headers: dict[str, StringMatch] = field(default_factory=dict)
    query_params: dict[str, StringMatch] = field(default_factory=dict)
    port: int | None = None
    source_labels: dict[str, str] = field(default_factory=dict)
    gateways: tuple[str, ...] = ()
    source_namespace: str | None = None
    ignore_uri_case: bool = False

    def is_catch_all(self) -> bool:
        """True when this match accepts every request (Istio's ``IsCatchAllRoute``)."""
        uri_all = self.uri is None or (
            (self.uri.kind is MatchKind.PREFIX and self.uri.value == "/")
            or (self.uri.kind is MatchKind.REGEX and self.uri.value in ("*", ".*"))
        )
        return (
            uri_all
            and not self.headers
            and not self.without_headers
            and not self.query_params
            and self.method is None
            and self.authority is None
            and self.scheme is None
        )


@dataclass(frozen=True)
class PortSelector:
    number: int


@dataclass(frozen=True)
class Destination:
    host: str
    subset: str | None = None
    port: PortSelector | None = None


@dataclass(frozen=True)
class HeaderOperations:
    set: dict[str, str] = field(default_factory=dict)
    add: dict[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Headers:
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


@dataclass(frozen=True)
class HTTPRouteDestination:
    destination: Destination
    weight: int = 0
    headers: Headers | None = None


@dataclass(frozen=True)
class Delay:
    fixed_delay: float | None
    percentage: float | None = None  # Percent.value, [0, 100]
    percent: int | None = None  # deprecated int percent


@dataclass(frozen=True)
class Abort:
    http_status: int | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: float | None = None


@dataclass(frozen=True)
class HTTPFaultInjection:
    delay: Delay | None = None
    abort: Abort | None = None


@dataclass(frozen=True)
class HTTPRetry:
    attempts: int
    per_try_timeout: float | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: float | None = None


@dataclass(frozen=True)
class HTTPRewrite:
    uri: str | None = None
    authority: str | None = None


@dataclass(frozen=True)
class HTTPRedirect:
    uri: str | None = None
    authority: str | None = None
    redirect_code: int = 301


@dataclass(frozen=True)
class HTTPDirectResponse:
    status: int
    body: str | None = None


@dataclass(frozen=True)
class HTTPMirrorPolicy:
    destination: Destination
    percentage: float | None = None  # None means 100 %


@dataclass(frozen=True)
class HTTPRoute:
    name: str | None = None
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = ()
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    rewrite: HTTPRewrite | None = None
    timeout: float | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirror_percentage: float | None = None  # mirrorPercentage.value or mirrorPercent
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    headers: Headers | None = None

    def mirror_policies(self) -> tuple[HTTPMirrorPolicy, ...]:
        """``mirror``/``mirrorPercentage`` and ``mirrors[]`` as one list (Istio merges them)."""
        if self.mirror is not None:
            return (HTTPMirrorPolicy(self.mirror, self.mirror_percentage),)
        return self.mirrors


@dataclass(frozen=True)
class Metadata:
    name: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class VirtualService:
    metadata: Metadata
    hosts: tuple[str, ...]
    gateways: tuple[str, ...] = ()
    http: tuple[HTTPRoute, ...] = ()
    export_to: tuple[str, ...] = ()
    has_tcp_or_tls: bool = False  # tcp/tls sections are accepted but not translated locally
    source: str = field(default="<memory>", compare=False)  # file it came from
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    kind: ClassVar[str] = "VirtualService"


class LoadBalancerSimple(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    LEAST_REQUEST = "LEAST_REQUEST"
    LEAST_CONN = "LEAST_CONN"
    ROUND_ROBIN = "ROUND_ROBIN"
    RANDOM = "RANDOM"
    PASSTHROUGH = "PASSTHROUGH"


@dataclass(frozen=True)
class ConsistentHash:
    http_header_name: str | None = None
    http_cookie_name: str | None = None
    http_cookie_ttl: float | None = None
    use_source_ip: bool = False
    http_query_parameter_name: str | None = None
    minimum_ring_size: int | None = None
    maglev_table_size: int | None = None


@dataclass(frozen=True)
class LoadBalancerSettings:
    simple: LoadBalancerSimple | None = None
    consistent_hash: ConsistentHash | None = None
    warmup_duration: float | None = None


@dataclass(frozen=True)
class TCPSettings:
    max_connections: int | None = None
    connect_timeout: float | None = None
    max_connection_duration: float | None = None
    idle_timeout: float | None = None


@dataclass(frozen=True)
class HTTPSettings:
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout: float | None = None
    h2_upgrade_policy: str | None = None  # DEFAULT | DO_NOT_UPGRADE | UPGRADE
    use_client_protocol: bool = False
    max_concurrent_streams: int | None = None


@dataclass(frozen=True)
class ConnectionPoolSettings:
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


@dataclass(frozen=True)
class OutlierDetection:
    consecutive_5xx_errors: int | None = None
    consecutive_gateway_errors: int | None = None
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failures: int | None = None
    interval: float | None = None
    base_ejection_time: float | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None


@dataclass(frozen=True)
class PortTrafficPolicy:
    port: PortSelector
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None


@dataclass(frozen=True)
class TrafficPolicy:
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()


@dataclass(frozen=True)
class Subset:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


@dataclass(frozen=True)
class DestinationRule:
    metadata: Metadata
    host: str
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[str, ...] = ()
    source: str = field(default="<memory>", compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    kind: ClassVar[str] = "DestinationRule"


@dataclass(frozen=True)
class ServerPort:
    number: int
    protocol: str
    name: str = ""


@dataclass(frozen=True)
class Server:
    port: ServerPort
    hosts: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class Gateway:
    metadata: Metadata
    selector: dict[str, str]
    servers: tuple[Server, ...]
    source: str = field(default="<memory>", compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    kind: ClassVar[str] = "Gateway"


Resource = VirtualService | DestinationRule | Gateway


def resource_id(resource: Resource) -> str:
    """``Kind namespace/name``, the way errors and the CLI name a resource."""
    return f"{resource.kind} {resource.metadata.key}"
