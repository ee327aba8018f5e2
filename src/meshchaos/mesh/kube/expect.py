"""What a sidecar's config must show once a policy has reached it (not just SYNCED, T5).

An :class:`Expectation` is a predicate over one proxy's parsed ``config_dump`` (the
backend-neutral view of ``meshchaos.mesh.config_dump``): for a VirtualService, the
outbound route of its host, route by route (clusters and weights, fault, timeout,
retries); for a DestinationRule, its subset clusters and their outlier detection and
pending-request limit; for a removed resource, the default route or the subset clusters
gone. Which proxies must show it: every sidecar that calls the host (the callers in
``meshchaos.apps.facts.CALLS``) and the client. Gateway-bound VirtualServices are checked
by the probe through the gateway instead.

The view is duck-typed on purpose (its module is the protocol's, see kubemesh.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshchaos.apps import facts
from meshchaos.istio.model import DestinationRule, HTTPRoute, Resource, VirtualService

__all__ = ["Expectation", "callers", "expectations", "service_port"]


@dataclass(frozen=True)
class Expectation:
    """``what`` a proxy must show; ``check(view)`` returns ``None`` when it does, else
    what it shows instead."""

    what: str
    check: Callable[[Any], str | None]


def service_port(host: str) -> int | None:
    """The Service port of a short host of the apps (``reviews`` -> 9080)."""
    for app in facts.APPS:
        if app.name == host.split(".")[0]:
            return app.port
    return None


def callers(host: str) -> set[str]:
    """The apps whose sidecars route calls to ``host`` (the client always does)."""
    short = host.split(".")[0]
    return {e.caller_app for e in facts.CALLS if e.callee == short} | {facts.CLIENT.name}


def _fqdn(host: str, namespace: str) -> str:
    return host if "." in host else f"{host}.{namespace}.svc.cluster.local"


def _cluster(host: str, port: int, subset: str | None, namespace: str) -> str:
    return f"outbound|{port}|{subset or ''}|{_fqdn(host, namespace)}"


def _vhost(view: Any, host: str, port: int, namespace: str) -> Any | None:
    rc = view.routes.get(str(port))
    if rc is None:
        return None
    fqdn = _fqdn(host, namespace)
    for vh in rc.virtual_hosts:
        if fqdn in vh.domains or f"{fqdn}:{port}" in vh.domains:
            return vh
    return None


def _route_clusters(route: HTTPRoute, port: int, namespace: str) -> set[str]:
    dests = [d for d in route.route if len(route.route) == 1 or d.weight > 0]
    return {
        _cluster(
            d.destination.host,
            d.destination.port.number if d.destination.port else port,
            d.destination.subset,
            namespace,
        )
        for d in dests
    }


def _expected_routes(vs: VirtualService) -> list[HTTPRoute]:
    out: list[HTTPRoute] = []
    for route in vs.http:
        out += [route] * max(1, len(route.match))
        if not route.match or any(m.is_catch_all() for m in route.match):
            break
    return out


def _check_route(want: HTTPRoute, got: Any, port: int, ns: str) -> str | None:
    clusters = {c for c, _ in got.clusters}
    expected = _route_clusters(want, port, ns)
    if want.route and clusters != expected:
        return f"clusters {sorted(clusters)}, expected {sorted(expected)}"
    fault = got.fault
    if want.fault is not None and want.fault.abort is not None:
        status = want.fault.abort.http_status
        if fault is None or fault.abort_status != status:
            return f"fault {fault}, expected an abort with {status}"
    delay = want.fault.delay if want.fault is not None else None
    if delay is not None and (fault is None or fault.delay_s is None):
        return f"fault {fault}, expected a delay of {delay.fixed_delay} s"
    if want.fault is None and fault is not None:
        return f"fault {fault}, expected none"
    if want.timeout is not None and got.timeout_s != want.timeout:
        return f"timeout {got.timeout_s} s, expected {want.timeout} s"
    if want.retries is not None:
        retries = got.retry.num_retries if got.retry is not None else 0
        if retries != max(0, want.retries.attempts):
            return f"{retries} retries, expected {want.retries.attempts}"
    return None


def _vs_check(vs: VirtualService, host: str, port: int, ns: str) -> Callable[[Any], str | None]:
    want = _expected_routes(vs)

    def check(view: Any) -> str | None:
        vh = _vhost(view, host, port, ns)
        if vh is None:
            return f"no virtual host for {_fqdn(host, ns)}:{port}"
        if len(vh.routes) < len(want):
            return f"{len(vh.routes)} routes, expected {len(want)}"
        for i, (w, g) in enumerate(zip(want, vh.routes, strict=False)):
            problem = _check_route(w, g, port, ns)
            if problem:
                return f"route {i}: {problem}"
        return None

    return check


def _default_route_check(host: str, port: int, ns: str) -> Callable[[Any], str | None]:
    default = _cluster(host, port, None, ns)

    def check(view: Any) -> str | None:
        vh = _vhost(view, host, port, ns)
        if vh is None:
            return f"no virtual host for {_fqdn(host, ns)}:{port}"
        got = [{c for c, _ in r.clusters} for r in vh.routes]
        if got != [{default}] or vh.routes[0].fault is not None:
            return f"routes to {got}, expected only the default route to {default}"
        return None

    return check


def _dr_check(
    dr: DestinationRule, port: int, ns: str, present: bool
) -> Callable[[Any], str | None]:
    names = [_cluster(dr.host, port, s.name, ns) for s in dr.subsets]
    policy = dr.traffic_policy
    outlier = policy is not None and policy.outlier_detection is not None
    http = policy.connection_pool.http if policy and policy.connection_pool else None
    pending = http.http1_max_pending_requests if http else None

    def check(view: Any) -> str | None:
        for name in names:
            cluster = view.clusters.get(name)
            if not present:
                if cluster is not None:
                    return f"cluster {name} still present"
                continue
            if cluster is None:
                return f"no cluster {name}"
            if outlier and cluster.outlier_detection is None:
                return f"cluster {name} has no outlier detection"
            if pending is not None:
                cb = cluster.circuit_breakers
                got = cb.max_pending_requests if cb is not None else None
                if got != pending:
                    return f"cluster {name}: max_pending_requests {got}, expected {pending}"
        return None

    return check


def expectations(
    resource: Resource, namespace: str, *, present: bool = True
) -> list[tuple[set[str], Expectation]]:
    """(caller apps, expectation) pairs for ``resource`` in force (``present``) or gone."""
    out: list[tuple[set[str], Expectation]] = []
    if isinstance(resource, VirtualService):
        if resource.gateways and resource.gateways != ("mesh",):
            return out
        for host in resource.hosts:
            port = service_port(host)
            if port is None:
                continue
            if present:
                what = f"VirtualService {resource.metadata.name}'s routes for {host}:{port}"
                check = _vs_check(resource, host, port, namespace)
            else:
                name = resource.metadata.name
                what = f"the default route for {host}:{port} (VirtualService {name} removed)"
                check = _default_route_check(host, port, namespace)
            out.append((callers(host), Expectation(what, check)))
    elif isinstance(resource, DestinationRule):
        port = service_port(resource.host)
        if port is not None and resource.subsets:
            state = "" if present else " gone"
            name = resource.metadata.name
            what = f"DestinationRule {name}'s subset clusters of {resource.host}{state}"
            out.append(
                (
                    callers(resource.host),
                    Expectation(what, _dr_check(resource, port, namespace, present)),
                )
            )
    return out
