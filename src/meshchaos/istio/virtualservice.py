"""VirtualService: hosts, gateways and sections (``virtualservice.go ValidateVirtualService``)."""

from __future__ import annotations

from typing import Any

from meshchaos.istio._fields import Reader
from meshchaos.istio.model import HTTPRoute, Metadata, VirtualService
from meshchaos.istio.names import check_wildcard_domain, is_ip_address
from meshchaos.istio.vs_match import check_gateway_names
from meshchaos.istio.vs_route import parse_destination, parse_http_route

MESH_GATEWAY = "mesh"


def parse_virtual_service(
    spec: dict[str, Any], metadata: Metadata, r: Reader, source: str, raw: dict[str, Any]
) -> VirtualService | None:
    """Build a VirtualService from its ``spec``; ``None`` when any problem was reported."""
    before = r.problems.count
    gateways = r.str_list(spec.get("gateways"), "spec.gateways")
    check_gateway_names(gateways, "spec.gateways", r)
    # isGateway: bound to gateways only when gateways are listed and `mesh` is not one.
    gateway_bound = bool(gateways) and MESH_GATEWAY not in gateways
    hosts = _parse_hosts(spec.get("hosts"), r, applies_to_mesh=not gateway_bound)

    http = r.seq(spec.get("http"), "spec.http")
    tcp = r.seq(spec.get("tcp"), "spec.tcp")
    tls = r.seq(spec.get("tls"), "spec.tls")
    if not http and not tcp and not tls:
        r.add("spec", "http, tcp or tls must be provided in virtual service")
    routes: list[HTTPRoute] = []
    for i, item in enumerate(http):
        route = parse_http_route(item, f"spec.http[{i}]", r, gateway_bound=gateway_bound)
        if route is not None:
            routes.append(route)
    # tcp/tls are accepted but not translated locally; check only what every route needs.
    for section, entries in (("tcp", tcp), ("tls", tls)):
        _check_l4_routes(section, entries, r)
    export_to = r.str_list(spec.get("exportTo"), "spec.exportTo")

    if r.problems.count != before:
        return None
    return VirtualService(
        metadata=metadata,
        hosts=hosts,
        gateways=gateways,
        http=tuple(routes),
        export_to=export_to,
        has_tcp_or_tls=bool(tcp or tls),
        source=source,
        raw=raw,
    )


def _parse_hosts(value: Any, r: Reader, *, applies_to_mesh: bool) -> tuple[str, ...]:
    hosts = r.str_list(value, "spec.hosts")
    if not hosts:
        if value is None or value == []:
            # istiod takes a host-less VirtualService as a delegate; meshchaos has none.
            r.add(
                "spec.hosts",
                "at least one host is required (delegate VirtualServices are not supported)",
            )
        return hosts
    all_valid = True
    for i, host in enumerate(hosts):
        problem = check_wildcard_domain(host)
        if problem is not None:
            if not is_ip_address(host):
                r.add(f"spec.hosts[{i}]", problem)
                all_valid = False
        elif applies_to_mesh and host == "*":
            r.add(
                f"spec.hosts[{i}]",
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
            all_valid = False
    if all_valid:
        _check_duplicate_hosts(hosts, r)
    return hosts


def _check_duplicate_hosts(hosts: tuple[str, ...], r: Reader) -> None:
    """Literal duplicates, and wildcard overlaps such as ``*.foo.com`` and ``a.foo.com``."""
    seen: set[str] = set()
    for host in hosts:
        if host in seen:
            r.add("spec.hosts", f"duplicate hosts in virtual service: {host} & {host}")
        seen.add(host)
    wildcards = [h for h in dict.fromkeys(hosts) if h.startswith("*")]
    if not wildcards:
        return
    unique = list(dict.fromkeys(hosts))
    for i, a in enumerate(unique):
        for b in unique[i + 1 :]:
            if (a.startswith("*") or b.startswith("*")) and _hosts_match(a, b):
                r.add("spec.hosts", f"duplicate hosts in virtual service: {a} & {b}")


def _hosts_match(a: str, b: str) -> bool:
    """``host.Name.Matches``: equal, or one wildcard's suffix covers the other."""
    if a.startswith("*") and b.startswith("*"):
        longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
        return longer.endswith(shorter[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def _check_l4_routes(section: str, entries: list[Any], r: Reader) -> None:
    for i, item in enumerate(entries):
        path = f"spec.{section}[{i}]"
        raw = r.mapping(item, path)
        if raw is None:
            continue
        routes = r.seq(raw.get("route"), f"{path}.route")
        if not routes:
            r.add(path, f"{section.upper()} route is required")
        for j, dest in enumerate(routes):
            dest_raw = r.mapping(dest, f"{path}.route[{j}]")
            if dest_raw is not None:
                parse_destination(dest_raw.get("destination"), f"{path}.route[{j}].destination", r)
                weight = r.integer(dest_raw.get("weight", 0), f"{path}.route[{j}].weight")
                if weight is not None and weight < 0:
                    r.add(f"{path}.route[{j}].weight", "must be >= 0")
