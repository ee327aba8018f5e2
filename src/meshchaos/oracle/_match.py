"""Which VirtualService route a proxy picks, and which versions a destination reaches.

Follows docs/ISTIO_SEMANTICS.md §1 (route matching, proxy selectors), §2 (destinations,
subsets) and §7 (which DestinationRule policy a cluster gets). Host resolution and the
policy merge are the shared :mod:`meshchaos.istio.hosts` and :mod:`meshchaos.istio.cluster_policy`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meshchaos.istio.cluster_policy import EffectiveTrafficPolicy, effective_traffic_policy
from meshchaos.istio.hosts import destination_rule_for, host_matches, resolve_host
from meshchaos.istio.model import (
    DestinationRule,
    Gateway,
    HTTPMatchRequest,
    HTTPRoute,
    MatchKind,
    Resource,
    StringMatch,
    Subset,
    VirtualService,
)
from meshchaos.istio.route_policy import source_selects

NAMESPACE = "default"  # the topology's services all live here
_SUFFIX = resolve_host("_", NAMESPACE)[1:]  # ".default.svc.cluster.local"


def fqdn(service: str) -> str:
    return resolve_host(service, NAMESPACE)


def service_name(host: str, namespace: str = NAMESPACE) -> str:
    """The topology service a destination host names, as istiod resolves it (§2):
    ``reviews`` or ``reviews.default.svc.cluster.local`` -> ``reviews``. A host that
    resolves to no service of the namespace (``reviews.default``) is returned resolved,
    and so matches no topology service."""
    h = resolve_host(host, namespace)
    name = h[: -len(_SUFFIX)] if h.endswith(_SUFFIX) else ""
    return name if name and "." not in name else h


@dataclass(frozen=True)
class Request:
    """What a proxy sees of one request: path (with query), headers (lowercase), method."""

    path: str
    headers: Mapping[str, str]
    method: str = "GET"

    @property
    def uri(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        if "?" not in self.path:
            return {}
        out: dict[str, str] = {}
        for part in self.path.split("?", 1)[1].split("&"):
            k, _, v = part.partition("=")
            out.setdefault(k, v)
        return out


@dataclass(frozen=True)
class Picked:
    """A matched route: the VirtualService, the route index and the route."""

    vs: VirtualService
    index: int
    route: HTTPRoute
    why: str


def _string_match(m: StringMatch, value: str | None, *, ignore_case: bool = False) -> bool:
    if value is None:
        return False
    if m.kind is None or (m.kind is MatchKind.REGEX and m.value == "*"):
        return True  # presence match (§1)
    if m.kind is MatchKind.REGEX:
        return re.fullmatch(m.value, value) is not None
    a, b = (value.lower(), m.value.lower()) if ignore_case else (value, m.value)
    return a == b if m.kind is MatchKind.EXACT else a.startswith(b)


def _match_one(m: HTTPMatchRequest, req: Request, port: int, authority: str) -> bool:
    if m.port is not None and m.port != port:
        return False
    if m.uri is not None and not _string_match(m.uri, req.uri, ignore_case=m.ignore_uri_case):
        return False
    if m.method is not None and not _string_match(m.method, req.method):
        return False
    if m.authority is not None and not _string_match(m.authority, authority):
        return False
    for name, sm in m.headers.items():
        # Envoy compares header names case-insensitively, values case-sensitively (§1).
        if not _string_match(sm, req.headers.get(name.lower())):
            return False
    for name, sm in m.without_headers.items():
        value = req.headers.get(name.lower())
        # invert_match + treat_missing_header_as_empty, except presence matches (§1).
        if sm.kind is None:
            if value is not None:
                return False
        elif _string_match(sm, "" if value is None else value):
            return False
    query = req.query
    return all(_string_match(sm, query.get(k)) for k, sm in m.query_params.items())


def _gw_name(name: str) -> str:
    return name.split("/", 1)[-1]


def _describe(m: HTTPMatchRequest) -> str:
    parts: list[str] = []
    if m.uri is not None:
        parts.append(f"uri {m.uri.kind or 'present'} {m.uri.value}")
    for k, sm in m.headers.items():
        parts.append(f"{k} {sm.kind or 'present'} {sm.value}".rstrip())
    for k, sm in m.without_headers.items():
        parts.append(f"without {k} {sm.kind or 'present'} {sm.value}".rstrip())
    if m.source_labels:
        parts.append(f"sourceLabels {m.source_labels}")
    return ", ".join(parts) or "catch-all"


def _host_matches(host: str, namespace: str, service: str) -> bool:
    return host_matches(resolve_host(host, namespace), fqdn(service))


def _vs_for_sidecar(vs: VirtualService) -> bool:
    return not vs.gateways or "mesh" in vs.gateways


def find_virtual_service(
    resources: Sequence[Resource], service: str, gateway: str | None
) -> VirtualService | None:
    """The VirtualService the proxy uses for ``service``; the first one wins (§1: a later
    one for the same host is dropped as a duplicate domain; which is later is UNCONFIRMED)."""
    gateways = {r.metadata.name for r in resources if isinstance(r, Gateway)}
    for r in resources:
        if not isinstance(r, VirtualService):
            continue
        if gateway is None:
            if not _vs_for_sidecar(r):
                continue
            if any(_host_matches(h, r.metadata.namespace, service) for h in r.hosts):
                return r
        else:
            bound = {_gw_name(g) for g in r.gateways} - {"mesh"}
            if not bound or (gateways and not bound & gateways):
                continue
            if "*" in r.hosts or any(
                _host_matches(h, r.metadata.namespace, service) for h in r.hosts
            ):
                return r
    return None


def pick_route(
    vs: VirtualService,
    req: Request,
    port: int,
    authority: str,
    labels: Mapping[str, str],
    gateway: str | None,
) -> Picked | None:
    """The first route whose match accepts the request; None is Envoy's 404 NR (§1)."""
    proxy = gateway or "mesh"

    def bound(name: str) -> bool:
        return _gw_name(name) == proxy

    for i, route in enumerate(vs.http):
        matches = route.match or (HTTPMatchRequest(),)
        for m in matches:
            # Proxy selectors decide whether the route exists on this proxy at all (§1).
            if not source_selects(m, labels, NAMESPACE, bound):
                continue
            if _match_one(m, req, port, authority):
                # Istio stops emitting routes after the first catch-all, but a
                # catch-all always matches, so first-match order already covers it.
                return Picked(vs, i, route, _describe(m))
    return None


def find_destination_rule(resources: Sequence[Resource], service: str) -> DestinationRule | None:
    rules = [r for r in resources if isinstance(r, DestinationRule)]
    return destination_rule_for(rules, fqdn(service))


def find_subset(resources: Sequence[Resource], service: str, name: str) -> Subset | None:
    """The subset as declared in the service's DestinationRule; None: no such cluster (NC)."""
    dr = find_destination_rule(resources, service)
    if dr is None:
        return None
    for s in dr.subsets:
        if s.name == name:
            return s
    return None


def cluster_policy(
    resources: Sequence[Resource], service: str, subset: str | None, port: int
) -> EffectiveTrafficPolicy:
    """The traffic policy of cluster ``outbound|port|subset|service`` (§7 merge rules)."""
    return effective_traffic_policy(find_destination_rule(resources, service), subset, port)


def consistent_hash(
    resources: Sequence[Resource], service: str, subset: str | None, port: int
) -> bool:
    """Whether the cluster balances by consistent hash (its retries drop previous_hosts, §4)."""
    lb = cluster_policy(resources, service, subset, port).load_balancer
    return lb is not None and lb.consistent_hash is not None
