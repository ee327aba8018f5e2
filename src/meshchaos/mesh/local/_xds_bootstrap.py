"""The static part of each Envoy: its bootstrap with loopback listeners and file-based xDS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshchaos.apps.catalog import NAMESPACE
from meshchaos.mesh.local._xds_common import FAULT_FILTER, ROUTER_FILTER, socket_address, typed
from meshchaos.mesh.local.service_registry import GATEWAY_LISTENER, ProxySpec

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

# listener name -> (stat prefix, route config name, use_remote_address)
OUTBOUND = ("outbound", "outbound", "outbound", False)
INBOUND = ("inbound", "inbound", "inbound", False)
GATEWAY_LISTENER_SPEC = (GATEWAY_LISTENER, "gateway", GATEWAY_LISTENER, True)


def cds_file(xds_dir: Path) -> Path:
    """Where the runtime writes the Cluster DiscoveryResponse."""
    return xds_dir / "cds.json"


def rds_file(xds_dir: Path, route_config: str) -> Path:
    """Where the runtime writes one RouteConfiguration's DiscoveryResponse."""
    return xds_dir / f"rds_{route_config}.json"


def _config_source(path: Path, xds_dir: Path) -> dict[str, Any]:
    # watched_directory: Envoy reloads on a rename into the directory (atomic update).
    return {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(path), "watched_directory": {"path": str(xds_dir)}},
    }


def _http_filters() -> list[dict[str, Any]]:
    # The same order as Istio's HCM (listener_builder.go): fault before router. The fault
    # filter is empty; each route carries its HTTPFault in typed_per_filter_config.
    return [
        {
            "name": FAULT_FILTER,
            "typed_config": typed("envoy.extensions.filters.http.fault.v3.HTTPFault"),
        },
        {
            "name": ROUTER_FILTER,
            "typed_config": typed(
                "envoy.extensions.filters.http.router.v3.Router", suppress_envoy_headers=False
            ),
        },
    ]


def _listener(spec: tuple[str, str, str, bool], xds_dir: Path) -> dict[str, Any]:
    name, stat_prefix, route_config, use_remote_address = spec
    hcm: dict[str, Any] = typed(
        HCM,
        stat_prefix=stat_prefix,
        rds={
            "route_config_name": route_config,
            "config_source": _config_source(rds_file(xds_dir, route_config), xds_dir),
        },
        http_filters=_http_filters(),
        # PILOT_SIDECAR_USE_REMOTE_ADDRESS=false on sidecars, true on gateways (listener.go):
        # with false, app-set x-envoy-* headers are stripped as from an external client.
        use_remote_address=use_remote_address,
        stream_idle_timeout="0s",
        normalize_path=True,
    )
    if name == "inbound":
        hcm["server_name"] = "istio-envoy"
    return {
        "name": name,
        "address": socket_address(0),  # the OS picks; the runtime reads admin /listeners
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def listener_specs(proxy: ProxySpec) -> list[tuple[str, str, str, bool]]:
    """(listener name, stat prefix, route config name, use_remote_address) of each listener."""
    if proxy.role == "gateway":
        return [GATEWAY_LISTENER_SPEC]
    return [OUTBOUND, INBOUND] if proxy.has_inbound else [OUTBOUND]


def bootstrap(proxy: ProxySpec, xds_dir: Path, *, stats_flush: bool = False) -> dict[str, Any]:
    """The Envoy bootstrap of ``proxy``: static listeners, CDS and RDS from files in ``xds_dir``.

    ``stats_flush`` sets ``stats_flush_on_admin`` (flush sinks only when admin asks).
    """
    xds_dir = xds_dir.resolve()
    kind = "router" if proxy.role == "gateway" else "sidecar"
    if proxy.role == "gateway":
        node_cluster = f"{proxy.name}.istio-system"
    else:
        node_cluster = f"{proxy.workload.name if proxy.workload else proxy.name}.{NAMESPACE}"
    out: dict[str, Any] = {
        "node": {
            "id": f"{kind}~127.0.0.1~{proxy.name}.{NAMESPACE}~{NAMESPACE}.svc.cluster.local",
            "cluster": node_cluster,
            "metadata": {"LABELS": dict(proxy.labels), "NAMESPACE": NAMESPACE},
        },
        "admin": {"address": socket_address(0)},
        "static_resources": {"listeners": [_listener(s, xds_dir) for s in listener_specs(proxy)]},
        "dynamic_resources": {"cds_config": _config_source(cds_file(xds_dir), xds_dir)},
    }
    if stats_flush:
        out["stats_flush_on_admin"] = True
    return out
