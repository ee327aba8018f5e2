"""A backend-neutral view of what one Envoy runs, read from its ``/config_dump`` JSON.

Both backends can check that a proxy runs given content with it: the local mesh from
each Envoy's admin ``/config_dump``, a Kubernetes sidecar through ``pilot-agent request
GET config_dump``. The view keeps what the catalogue's policies set (routes, weights,
faults, timeouts, retry policies; circuit breakers and outlier detection on clusters)
in plain numbers: durations in seconds, fractional percentages in percent.

The JSON is Envoy's proto3 JSON (``envoy.admin.v3.ConfigDump``): durations are strings
such as ``"0.500s"``, 64-bit integers may be strings, and fields at their default are
left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshchaos.errors import MeshError

__all__ = [
    "CircuitBreakers",
    "ClusterView",
    "ConfigDumpView",
    "Fault",
    "OutlierDetection",
    "RetryPolicy",
    "RouteConfigView",
    "RouteView",
    "VirtualHostView",
    "parse_config_dump",
]

_FAULT_TYPE = "envoy.extensions.filters.http.fault.v3.HTTPFault"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


@dataclass(frozen=True)
class Fault:
    """An HTTP fault on a route; ``None`` where that half is not configured."""

    delay_s: float | None = None
    delay_percent: float | None = None
    abort_status: int | None = None
    abort_percent: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    retry_on: tuple[str, ...]
    num_retries: int  # Envoy's default when left out is 1
    per_try_timeout_s: float | None = None
    retriable_status_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class RouteView:
    """One route of a virtual host: its match, where it sends, and what it does on the way."""

    match: Mapping[str, Any]  # Envoy's RouteMatch as dumped (prefix/path/headers...)
    clusters: tuple[tuple[str, int], ...]  # (cluster, weight); one cluster has weight 100
    timeout_s: float | None = None  # None: Envoy's default (15 s); 0.0: disabled
    retry: RetryPolicy | None = None
    fault: Fault | None = None
    direct_status: int | None = None  # a direct_response route's status


@dataclass(frozen=True)
class VirtualHostView:
    name: str
    domains: tuple[str, ...]
    routes: tuple[RouteView, ...]


@dataclass(frozen=True)
class RouteConfigView:
    name: str
    version: str
    virtual_hosts: tuple[VirtualHostView, ...]

    def virtual_host(self, domain: str) -> VirtualHostView:
        """The virtual host serving ``domain`` (exact domain match); :class:`KeyError` if none."""
        for vh in self.virtual_hosts:
            if domain in vh.domains:
                return vh
        raise KeyError(f"route config {self.name!r} has no virtual host for {domain!r}")


@dataclass(frozen=True)
class CircuitBreakers:
    """The default-priority thresholds; ``None`` where Envoy's default applies."""

    max_connections: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None
    max_retries: int | None = None


@dataclass(frozen=True)
class OutlierDetection:
    consecutive_5xx: int | None = None
    consecutive_gateway_failure: int | None = None
    interval_s: float | None = None
    base_ejection_time_s: float | None = None
    max_ejection_percent: int | None = None


@dataclass(frozen=True)
class ClusterView:
    name: str
    version: str
    circuit_breakers: CircuitBreakers | None = None
    outlier_detection: OutlierDetection | None = None
    max_requests_per_connection: int | None = None
    lb_policy: str = "ROUND_ROBIN"


@dataclass(frozen=True)
class ConfigDumpView:
    """Route configs and clusters by name (static and dynamic, active ones only)."""

    routes: Mapping[str, RouteConfigView]
    clusters: Mapping[str, ClusterView]


def parse_config_dump(obj: Mapping[str, Any]) -> ConfigDumpView:
    """The view of one Envoy's ``/config_dump``; a dump that is not one (no ``configs``
    list, a duration that does not parse) is a :class:`MeshError` saying where."""
    configs = obj.get("configs")
    if not isinstance(configs, list):
        raise MeshError("config_dump: no 'configs' list (not an Envoy /config_dump?)")
    routes: dict[str, RouteConfigView] = {}
    clusters: dict[str, ClusterView] = {}
    for cfg in configs:
        kind = str(cfg.get("@type", "")).rsplit(".", 1)[-1]
        if kind == "RoutesConfigDump":
            for entry in [
                *cfg.get("static_route_configs", []),
                *cfg.get("dynamic_route_configs", []),
            ]:
                rc = _route_config(
                    entry.get("route_config", {}), str(entry.get("version_info", ""))
                )
                routes[rc.name] = rc
        elif kind == "ClustersConfigDump":
            for entry in [*cfg.get("static_clusters", []), *cfg.get("dynamic_active_clusters", [])]:
                cl = _cluster(entry.get("cluster", {}), str(entry.get("version_info", "")))
                clusters[cl.name] = cl
    return ConfigDumpView(routes, clusters)


def _route_config(rc: Mapping[str, Any], version: str) -> RouteConfigView:
    name = str(rc.get("name", ""))
    hosts = tuple(
        VirtualHostView(
            str(vh.get("name", "")),
            tuple(vh.get("domains", [])),
            tuple(
                _route(r, f"{name}/{vh.get('name', '')}[{i}]")
                for i, r in enumerate(vh.get("routes", []))
            ),
        )
        for vh in rc.get("virtual_hosts", [])
    )
    return RouteConfigView(name, version, hosts)


def _route(r: Mapping[str, Any], where: str) -> RouteView:
    action = r.get("route", {})
    if "weighted_clusters" in action:
        clusters = tuple(
            (str(c["name"]), int(c.get("weight", 0)))
            for c in action["weighted_clusters"].get("clusters", [])
        )
    elif "cluster" in action:
        clusters = ((str(action["cluster"]), 100),)
    else:
        clusters = ()
    timeout = action.get("timeout")
    direct = r.get("direct_response", {}).get("status")
    return RouteView(
        match=dict(r.get("match", {})),
        clusters=clusters,
        timeout_s=None if timeout is None else _seconds(timeout, f"{where}.timeout"),
        retry=_retry(action["retry_policy"], where) if "retry_policy" in action else None,
        fault=_fault(r.get("typed_per_filter_config", {}), where),
        direct_status=None if direct is None else int(direct),
    )


def _retry(p: Mapping[str, Any], where: str) -> RetryPolicy:
    per_try = p.get("per_try_timeout")
    return RetryPolicy(
        retry_on=tuple(s for s in str(p.get("retry_on", "")).split(",") if s),
        num_retries=int(p.get("num_retries", 1)),
        per_try_timeout_s=None
        if per_try is None
        else _seconds(per_try, f"{where}.per_try_timeout"),
        retriable_status_codes=tuple(int(c) for c in p.get("retriable_status_codes", [])),
    )


def _fault(per_filter: Mapping[str, Any], where: str) -> Fault | None:
    for cfg in per_filter.values():
        if isinstance(cfg, Mapping) and str(cfg.get("@type", "")).endswith(_FAULT_TYPE):
            delay, abort = cfg.get("delay", {}), cfg.get("abort", {})
            return Fault(
                delay_s=_seconds(delay["fixed_delay"], f"{where}.fault.delay")
                if "fixed_delay" in delay
                else None,
                delay_percent=_percent(delay["percentage"]) if delay else None,
                abort_status=int(abort["http_status"]) if "http_status" in abort else None,
                abort_percent=_percent(abort["percentage"]) if abort else None,
            )
    return None


def _cluster(c: Mapping[str, Any], version: str) -> ClusterView:
    thresholds = c.get("circuit_breakers", {}).get("thresholds", [])
    default = next((t for t in thresholds if t.get("priority", "DEFAULT") == "DEFAULT"), None)
    breakers = None
    if default is not None:
        breakers = CircuitBreakers(
            max_connections=_int(default.get("max_connections")),
            max_pending_requests=_int(default.get("max_pending_requests")),
            max_requests=_int(default.get("max_requests")),
            max_retries=_int(default.get("max_retries")),
        )
    od = c.get("outlier_detection")
    outlier = None
    if od is not None:
        name = str(c.get("name", ""))
        outlier = OutlierDetection(
            consecutive_5xx=_int(od.get("consecutive_5xx")),
            consecutive_gateway_failure=_int(od.get("consecutive_gateway_failure")),
            interval_s=_opt_seconds(od.get("interval"), f"{name}.interval"),
            base_ejection_time_s=_opt_seconds(od.get("base_ejection_time"), f"{name}.base"),
            max_ejection_percent=_int(od.get("max_ejection_percent")),
        )
    options = c.get("typed_extension_protocol_options", {}).get(_HTTP_OPTIONS, {})
    per_conn = options.get("common_http_protocol_options", {}).get("max_requests_per_connection")
    return ClusterView(
        name=str(c.get("name", "")),
        version=version,
        circuit_breakers=breakers,
        outlier_detection=outlier,
        max_requests_per_connection=_int(per_conn),
        lb_policy=str(c.get("lb_policy", "ROUND_ROBIN")),
    )


def _int(value: Any) -> int | None:
    # proto3 JSON writes 64-bit integers as strings, wrapped 32-bit ones as numbers.
    return None if value is None else int(value)


def _percent(p: Mapping[str, Any]) -> float:
    """A FractionalPercent in percent (``{numerator: 500000, denominator: MILLION}`` -> 50)."""
    denominator = _DENOMINATORS[str(p.get("denominator", "HUNDRED"))]
    return 100.0 * int(p.get("numerator", 0)) / denominator


def _opt_seconds(value: Any, where: str) -> float | None:
    return None if value is None else _seconds(value, where)


def _seconds(value: Any, where: str) -> float:
    """A proto3 JSON Duration (``"0.500s"``) in seconds."""
    text = str(value)
    try:
        if not text.endswith("s"):
            raise ValueError(text)
        return float(text[:-1])
    except ValueError:
        raise MeshError(f"config_dump: {where}: not a duration: {value!r}") from None
