"""Istio resources -> the Envoy config of one local-mesh proxy, as istiod would generate it.

docs/ISTIO_SEMANTICS.md is the spec. Every proxy is a real Envoy whose bootstrap
(:func:`bootstrap`) has static listeners on 127.0.0.1:0 and takes RDS and CDS from files
that the runtime writes with :func:`xds_files` (one file per route configuration, since
Envoy's file subscription expects exactly one resource per file).

Listeners, route configurations and the stat prefixes the suite reads:

============  ===========  ===============  ==============================================
listener      stat prefix  route config     counters, for example
============  ===========  ===============  ==============================================
``outbound``  outbound     ``outbound``     ``http.outbound.fault.aborts_injected``,
                                            ``http.outbound.fault.delays_injected``,
                                            ``http.outbound.rds.outbound.update_rejected``
``inbound``   inbound      ``inbound``      ``http.inbound.downstream_rq_completed``
``http.8080`` gateway      ``http.8080``    ``http.gateway.fault.aborts_injected``,
                                            ``http.gateway.rds.http.8080.update_rejected``
============  ===========  ===============  ==============================================

Cluster counters are ``cluster.<name>.*`` (``cluster.outbound|9080|v2|reviews...
upstream_rq_retry``) and ``cluster_manager.cds.update_rejected``.

The sidecar ``outbound`` listener is the app's HTTP proxy (absolute-form URIs): one route
config with a virtual host per service:port, named ``<fqdn>:<port>``, plus a catch-all that
answers 502 (REGISTRY_ONLY). The ``inbound`` listener fronts the app with Istio's default
inbound route. The gateway serves port 8080 only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshchaos.apps.catalog import NAMESPACE, WorkloadSpec
from meshchaos.apps.facts import INGRESS_GATEWAY
from meshchaos.istio.cluster_policy import effective_traffic_policy
from meshchaos.istio.hosts import destination_rule_for, host_matches, resolve_host
from meshchaos.istio.model import (
    ConsistentHash,
    DestinationRule,
    Gateway,
    Resource,
    VirtualService,
)
from meshchaos.mesh.local._xds_bootstrap import bootstrap
from meshchaos.mesh.local._xds_clusters import inbound_cluster, outbound_cluster
from meshchaos.mesh.local._xds_common import TYPE_PREFIX, cluster_name
from meshchaos.mesh.local._xds_routes import RouteContext, default_route, routes_for_virtual_service
from meshchaos.mesh.local.service_registry import (
    GATEWAY_LISTENER,
    Endpoint,
    ProxyConfig,
    ProxySpec,
    service_ports,
)

__all__ = ["bootstrap", "translate_proxy", "xds_files"]

ROUTE_TYPE = TYPE_PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE = TYPE_PREFIX + "envoy.config.cluster.v3.Cluster"


class _Mesh:
    """The resources and registry one translation works from."""

    def __init__(self, resources: Sequence[Resource], workloads: Sequence[WorkloadSpec]) -> None:
        self.services = service_ports(workloads)
        self.virtual_services = [r for r in resources if isinstance(r, VirtualService)]
        self.gateways = [r for r in resources if isinstance(r, Gateway)]
        self.destination_rules = [r for r in resources if isinstance(r, DestinationRule)]
        self.warnings: list[str] = []
        seen: set[str] = set()
        for r in self.destination_rules:
            host = resolve_host(r.host, r.metadata.namespace)
            if host in seen:
                # istiod keeps the oldest DR per host; destination_rule_for keeps the first.
                self.warnings.append(
                    f"DestinationRule {r.metadata.key}: {host} already has a "
                    "DestinationRule; ignored"
                )
            seen.add(host)

    def rule_for(self, fqdn: str) -> DestinationRule | None:
        return destination_rule_for(self.destination_rules, fqdn)

    def hash_for(self, fqdn: str, subset: str | None, port: int) -> ConsistentHash | None:
        lb = effective_traffic_policy(self.rule_for(fqdn), subset, port).load_balancer
        return lb.consistent_hash if lb is not None else None

    def context(self, proxy: ProxySpec, gateway_names: frozenset[str], port: int) -> RouteContext:
        return RouteContext(
            proxy.labels, gateway_names, port, self.services, self.hash_for, self.warnings
        )


def _qualify(gateway: str, namespace: str) -> str:
    return gateway if gateway == "mesh" or "/" in gateway else f"{namespace}/{gateway}"


def _domains(fqdn: str, port: int, single_port: bool) -> list[str]:
    svc, ns = fqdn.split(".")[:2]
    names = [fqdn, svc, f"{svc}.{ns}", f"{svc}.{ns}.svc"]
    out: list[str] = []
    for name in names:
        # Bare names only for single-port services: domains must be unique across vhosts.
        out += [name, f"{name}:{port}"] if single_port else [f"{name}:{port}"]
    return out


def _block_all() -> dict[str, Any]:
    # REGISTRY_ONLY's catch-all (httproute.go buildCatchAllVirtualHost). We never pass
    # through to non-mesh addresses: the local mesh must only ever dial 127.0.0.1 services.
    return {
        "name": "block_all",
        "domains": ["*"],
        "routes": [
            {"name": "block_all", "match": {"prefix": "/"}, "direct_response": {"status": 502}}
        ],
        "include_request_attempt_count": True,
    }


def _outbound_route_config(proxy: ProxySpec, mesh: _Mesh) -> dict[str, Any]:
    mesh_vs = [vs for vs in mesh.virtual_services if not vs.gateways or "mesh" in vs.gateways]
    by_host: dict[str, VirtualService] = {}
    for vs in mesh_vs:
        for h in vs.hosts:
            host = resolve_host(h, vs.metadata.namespace)
            # A wildcard host applies to every service it covers (§1, §2).
            targets = [fqdn for fqdn in mesh.services if host_matches(host, fqdn)]
            if not targets:
                mesh.warnings.append(
                    f"VirtualService {vs.metadata.key}: host {h!r} is not a "
                    "service of the local mesh; not routed"
                )
            for fqdn in targets:
                if fqdn in by_host:
                    mesh.warnings.append(
                        f"VirtualService {vs.metadata.key}: {fqdn} is routed by "
                        f"{by_host[fqdn].metadata.key}; dropped (duplicate)"
                    )
                else:
                    by_host[fqdn] = vs
    vhosts = []
    for fqdn, ports in mesh.services.items():
        for port in ports:
            bound = by_host.get(fqdn)
            ctx = mesh.context(proxy, frozenset({"mesh"}), port)
            routes = routes_for_virtual_service(bound, ctx) if bound is not None else []
            # A VS with no route for this proxy (sourceLabels, port) leaves the service on
            # its default route, as buildSidecarVirtualHostsForVirtualService returns nothing.
            if not routes:
                routes = [default_route(fqdn, port, mesh.hash_for(fqdn, None, port))]
            vhosts.append(
                {
                    "name": f"{fqdn}:{port}",
                    "domains": _domains(fqdn, port, len(ports) == 1),
                    "routes": routes,
                    "include_request_attempt_count": True,
                }
            )
    vhosts.append(_block_all())
    return {"name": "outbound", "virtual_hosts": vhosts, "validate_clusters": False}


def _gateway_route_config(proxy: ProxySpec, mesh: _Mesh) -> dict[str, Any]:
    bound: set[str] = set()
    for gw in mesh.gateways:
        if not all(proxy.labels.get(k) == v for k, v in gw.selector.items()):
            continue
        for server in gw.servers:
            if server.port.number == INGRESS_GATEWAY.port:
                bound.add(gw.metadata.key)
            else:
                mesh.warnings.append(
                    f"Gateway {gw.metadata.key}: server port "
                    f"{server.port.number} not served locally (only "
                    f"{INGRESS_GATEWAY.port})"
                )
    names = frozenset(bound)
    ctx = mesh.context(proxy, names, INGRESS_GATEWAY.port)
    routes_by_host: dict[str, list[dict[str, Any]]] = {}
    for vs in mesh.virtual_services:
        if not any(_qualify(g, vs.metadata.namespace) in names for g in vs.gateways):
            continue
        routes = routes_for_virtual_service(vs, ctx)
        for h in vs.hosts:
            # Gateways merge the routes of every VS for one host, in order (gateway.go).
            routes_by_host.setdefault(resolve_host(h, vs.metadata.namespace), []).extend(routes)
    vhosts = []
    for host, routes in sorted(routes_by_host.items()):
        if routes:
            vhosts.append(
                {
                    "name": f"{host}:{INGRESS_GATEWAY.port}",
                    "domains": ["*"] if host == "*" else [host, f"{host}:*"],
                    "routes": routes,
                    "include_request_attempt_count": True,
                }
            )
    name = GATEWAY_LISTENER
    return {"name": name, "virtual_hosts": vhosts, "validate_clusters": False}


def _inbound_route_config(proxy: ProxySpec) -> dict[str, Any]:
    port = proxy.inbound_port
    # route.go BuildDefaultHTTPInboundRoute (1.24+): no timeout, reset-before-request x2.
    route = {
        "name": "default",
        "match": {"prefix": "/"},
        "route": {
            "cluster": f"inbound|{port}||",
            "timeout": "0s",
            "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"},
            "retry_policy": {"retry_on": "reset-before-request", "num_retries": 2},
        },
        "decorator": {"operation": f"{proxy.name}.{NAMESPACE}.svc.cluster.local:{port}/*"},
    }
    vhost = {"name": f"inbound|http|{port}", "domains": ["*"], "routes": [route]}
    return {"name": "inbound", "virtual_hosts": [vhost], "validate_clusters": False}


def _outbound_clusters(mesh: _Mesh, endpoints: Sequence[Endpoint]) -> list[dict[str, Any]]:
    out = []
    for fqdn, ports in mesh.services.items():
        dr = mesh.rule_for(fqdn)
        for port in ports:
            out.append(outbound_cluster(fqdn, port, None, {}, dr, endpoints, mesh.warnings))
            for subset in dr.subsets if dr is not None else ():
                out.append(
                    outbound_cluster(
                        fqdn, port, subset.name, subset.labels, dr, endpoints, mesh.warnings
                    )
                )
    return sorted(out, key=lambda c: str(c["name"]))


def translate_proxy(
    proxy: ProxySpec,
    resources: Sequence[Resource],
    endpoints: Sequence[Endpoint],
    workloads: Sequence[WorkloadSpec],
) -> ProxyConfig:
    """The route configurations and clusters ``proxy`` runs under ``resources``.

    ``endpoints`` are the running instances (outbound cluster members); ``workloads`` define
    the services and their ports.
    """
    mesh = _Mesh(resources, workloads)
    clusters = _outbound_clusters(mesh, endpoints)
    if proxy.role == "gateway":
        route_configs = [_gateway_route_config(proxy, mesh)]
    else:
        route_configs = [_outbound_route_config(proxy, mesh)]
        if proxy.has_inbound:
            route_configs.append(_inbound_route_config(proxy))
            svc = proxy.workload.fqdn if proxy.workload and proxy.workload.service else ""
            dr = mesh.rule_for(svc) if svc else None
            clusters.append(inbound_cluster(proxy.inbound_port, proxy.app_port, dr))
    warnings = tuple(dict.fromkeys(mesh.warnings))  # de-duplicated, in order
    return ProxyConfig(tuple(route_configs), tuple(clusters), warnings)


def xds_files(config: ProxyConfig, version: str) -> dict[str, dict[str, Any]]:
    """File name -> DiscoveryResponse JSON: ``cds.json`` and one ``rds_<name>.json`` each."""
    files: dict[str, dict[str, Any]] = {
        "cds.json": {
            "version_info": version,
            "resources": [{"@type": CLUSTER_TYPE, **c} for c in config.clusters],
        }
    }
    for rc in config.route_configs:
        files[f"rds_{rc['name']}.json"] = {
            "version_info": version,
            "resources": [{"@type": ROUTE_TYPE, **rc}],
        }
    return files


# Re-exported so callers need one import; cluster_name is handy for stats lookups.
__all__ += ["cluster_name"]
