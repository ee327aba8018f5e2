"""VirtualService ``http[]`` -> Envoy routes, as istiod's ``route.go`` builds them.

Sources (istio/istio 1.29): ``pilot/pkg/networking/core/route/route.go``
(``BuildHTTPRoutesForVirtualService``, ``translateRoute``, ``sourceMatchHTTP``,
``applyHTTPRouteDestination``, ``GetDestinationCluster``, ``GetRouteOperation``,
``BuildDefaultHTTPOutboundRoute``). See docs/ISTIO_SEMANTICS.md §1-§2. The per-route policy
pieces live in :mod:`._xds_policies`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshchaos.istio.hosts import resolve_host
from meshchaos.istio.model import (
    ConsistentHash,
    Destination,
    HTTPMatchRequest,
    HTTPRoute,
    VirtualService,
)
from meshchaos.istio.route_policy import (
    destination_port,
    effective_retry_policy,
    mirror_fraction,
    route_destinations,
    route_timeout,
    source_selects,
)
from meshchaos.mesh.local._xds_common import FAULT_FILTER, cluster_name, fractional_percent
from meshchaos.mesh.local._xds_policies import (
    hash_policy,
    is_catch_all_route,
    retry_policy_json,
    set_timeout,
    translate_fault,
    translate_headers,
    translate_match,
)

HashLookup = Callable[[str, str | None, int], ConsistentHash | None]


@dataclass(frozen=True)
class RouteContext:
    """Per-proxy, per-listener-port facts the route translation depends on."""

    proxy_labels: Mapping[str, str]
    gateway_names: frozenset[str]  # {"mesh"} for sidecars, {"ns/name", ...} for the gateway
    listen_port: int
    services: Mapping[str, tuple[int, ...]]  # fqdn -> ports
    hash_for: HashLookup = field(default=lambda fqdn, subset, port: None)
    warnings: list[str] = field(default_factory=list)


def _source_matches(match: HTTPMatchRequest | None, ctx: RouteContext, ns: str) -> bool:
    """``sourceMatchHTTP`` (``source_selects``); every local proxy lives in ``default``."""
    return source_selects(
        match, ctx.proxy_labels, "default", lambda g: _qualify_gateway(g, ns) in ctx.gateway_names
    )


def _qualify_gateway(name: str, namespace: str) -> str:
    return name if name == "mesh" or "/" in name else f"{namespace}/{name}"


def destination_cluster(dest: Destination, ctx: RouteContext, ns: str) -> str:
    """``GetDestinationCluster``: explicit port, else the only port, else the listener port."""
    fqdn = resolve_host(dest.host, ns)
    port = destination_port(dest, ctx.services.get(fqdn, ()), ctx.listen_port)
    return cluster_name(port, dest.subset, fqdn)


def _hash_of(cluster: str, ctx: RouteContext) -> ConsistentHash | None:
    _, port, subset, fqdn = cluster.split("|", 3)
    return ctx.hash_for(fqdn, subset or None, int(port))


def _route_action(
    http: HTTPRoute, route: dict[str, Any], authority: str, ctx: RouteContext, ns: str
) -> dict[str, Any]:
    """``applyHTTPRouteDestination``."""
    action: dict[str, Any] = {}
    set_timeout(action, route_timeout(http))
    if http.rewrite is not None:
        if http.rewrite.uri:
            action["prefix_rewrite"] = http.rewrite.uri
        if http.rewrite.authority:
            authority = http.rewrite.authority
    if authority:
        action["host_rewrite_literal"] = authority
    mirrors = []
    for mp in http.mirror_policies():
        fraction = mirror_fraction(mp.percentage)
        if fraction is not None:
            mirrors.append(
                {
                    "cluster": destination_cluster(mp.destination, ctx, ns),
                    "runtime_fraction": {"default_value": fractional_percent(fraction)},
                    "trace_sampled": False,
                    # Istio 1.28+ sets DISABLE_SHADOW_HOST_SUFFIX: no "-shadow" host suffix.
                    "disable_shadow_host_suffix_append": True,
                }
            )
    if mirrors:
        action["request_mirror_policies"] = mirrors
    hashes: list[dict[str, Any]] = []
    consistent = False
    if len(http.route) == 1:
        dst = http.route[0]
        action["cluster"] = destination_cluster(dst.destination, ctx, ns)
        if dst.headers is not None:
            ops, dst_authority = translate_headers(dst.headers)
            for key, value in ops.items():
                route[key] = [*route.get(key, []), *value]
            if dst_authority and "host_rewrite_literal" not in action:
                action["host_rewrite_literal"] = dst_authority
        h = _hash_of(action["cluster"], ctx)
        consistent = h is not None
        if h is not None and (hp := hash_policy(h)) is not None:
            hashes.append(hp)
    else:
        weighted = []
        # Weight-0 entries are skipped; the rest go to Envoy unnormalised (§2).
        for dst, _ in route_destinations(http):
            cw: dict[str, Any] = {
                "name": destination_cluster(dst.destination, ctx, ns),
                "weight": dst.weight,
            }
            if dst.headers is not None:
                ops, dst_authority = translate_headers(dst.headers)
                cw.update(ops)
                if dst_authority:
                    cw["host_rewrite_literal"] = dst_authority
            h = _hash_of(cw["name"], ctx)
            if h is not None and (hp := hash_policy(h)) is not None:
                hashes.append(hp)
            weighted.append(cw)
        action["weighted_clusters"] = {"clusters": weighted}
    if hashes:
        action["hash_policy"] = hashes
    retry = effective_retry_policy(http.retries, consistent_hash=consistent)
    if retry is not None:
        action["retry_policy"] = retry_policy_json(retry)
    return action


def translate_route(
    vs: VirtualService, http: HTTPRoute, match: HTTPMatchRequest | None, ctx: RouteContext
) -> dict[str, Any] | None:
    """``translateRoute``: one Envoy route, or None when this proxy/port is not selected."""
    ns = vs.metadata.namespace
    if match is not None and match.port is not None and match.port != ctx.listen_port:
        return None
    if not _source_matches(match, ctx, ns):
        return None
    name = http.name or ""
    if match is not None and match.name:
        name = f"{name}.{match.name}"
    route: dict[str, Any] = {"name": name, "match": translate_match(match)}
    route["metadata"] = {
        "filter_metadata": {
            "istio": {
                "config": (
                    f"/apis/networking.istio.io/v1/namespaces/{ns}/virtual-service/{vs.metadata.name}"
                )
            }
        }
    }
    authority = ""
    if http.headers is not None:
        ops, authority = translate_headers(http.headers)
        route.update(ops)
    if http.redirect is not None:
        redirect: dict[str, Any] = {"response_code": _REDIRECT_CODES[http.redirect.redirect_code]}
        if http.redirect.uri:
            redirect["path_redirect"] = http.redirect.uri
        if http.redirect.authority:
            redirect["host_redirect"] = http.redirect.authority
        route["redirect"] = redirect
    elif http.direct_response is not None:
        direct: dict[str, Any] = {"status": http.direct_response.status}
        if http.direct_response.body is not None:
            direct["body"] = {"inline_string": http.direct_response.body}
        route["direct_response"] = direct
    else:
        route["route"] = _route_action(http, route, authority, ctx, ns)
    route["decorator"] = {"operation": _operation(route, vs.metadata.name, ctx.listen_port)}
    if http.fault is not None:
        route["typed_per_filter_config"] = {FAULT_FILTER: translate_fault(http.fault, ctx.warnings)}
    return route


_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


def _operation(route: dict[str, Any], vs_name: str, port: int) -> str:
    """``GetRouteOperation``: the tracing operation name."""
    m = route["match"]
    path = m.get("path") or (m["prefix"] + "*" if "prefix" in m else None)
    path = path or m.get("safe_regex", {}).get("regex", "/*")
    cluster = route.get("route", {}).get("cluster", "")
    if cluster.startswith("outbound|"):
        _, p, _, fqdn = cluster.split("|", 3)
        return f"{fqdn}:{p}{path}"
    return f"{vs_name}:{port}{path}"


def routes_for_virtual_service(vs: VirtualService, ctx: RouteContext) -> list[dict[str, Any]]:
    """``BuildHTTPRoutesForVirtualService``: in order, stopping after the first catch-all."""
    out: list[dict[str, Any]] = []
    for http in vs.http:
        catch_all = False
        if not http.match:
            if (r := translate_route(vs, http, None, ctx)) is not None:
                out.append(r)
            catch_all = True
        else:
            for match in http.match:
                r = translate_route(vs, http, match, ctx)
                if r is not None:
                    out.append(r)
                    if is_catch_all_route(r):
                        catch_all = True
                        break
        if catch_all:
            break
    return out


def default_route(fqdn: str, port: int, consistent_hash: ConsistentHash | None) -> dict[str, Any]:
    """``BuildDefaultHTTPOutboundRoute``: ``/`` -> the service, no timeout, default retries."""
    cluster = cluster_name(port, None, fqdn)
    action: dict[str, Any] = {"cluster": cluster}
    set_timeout(action, route_timeout(None))
    retry = effective_retry_policy(None, consistent_hash=consistent_hash is not None)
    assert retry is not None  # the default policy always exists (§4)
    action["retry_policy"] = retry_policy_json(retry)
    if consistent_hash is not None and (hp := hash_policy(consistent_hash)) is not None:
        action["hash_policy"] = [hp]
    return {
        "name": "default",
        "match": {"prefix": "/"},
        "route": action,
        "decorator": {"operation": f"{fqdn}:{port}/*"},
    }
