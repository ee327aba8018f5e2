"""The translator and the oracle agree on every Istio fact both derive.

For each policy (every packaged sample under ``data/istio``, valid variants built with the
validation gallery's builders, and the subset port-level DestinationRule), the Envoy JSON
the translator produces is read back independently of the shared ``meshchaos.istio`` semantics:
route timeout, retry policy, fault filter percentages, mirror shares, circuit-breaker
thresholds and outlier detection per cluster, with Envoy's defaults for what is left
unset. The same facts are then taken from the oracle's own path (``Engine.facts`` for a
route, ``_bounds.cluster_limits`` for a cluster) and must be equal.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources as package_data
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from meshchaos.apps.catalog import DEFAULT_WORKLOADS, find
from meshchaos.istio import (
    Destination,
    HTTPRoute,
    HTTPRouteDestination,
    Resource,
    VirtualService,
    load_text,
    parse_documents,
)
from meshchaos.istio.durations import parse_duration
from meshchaos.istio.hosts import host_matches, resolve_host
from meshchaos.mesh.local.service_registry import Endpoint, ProxySpec
from meshchaos.mesh.local.translate import translate_proxy
from meshchaos.oracle import BOOKINFO
from meshchaos.oracle._bounds import cluster_limits
from meshchaos.oracle._engine import Engine
from meshchaos.oracle._match import Request, find_virtual_service, pick_route, service_name

MAX_UINT32 = 4294967295
SUFFIX = ".default.svc.cluster.local"


def _gallery() -> ModuleType:
    """The validation gallery's builders (``vs``, ``route``, ``dr``, ...), reused as-is."""
    path = Path(__file__).parent / "istio" / "test_istio_invalid.py"
    spec = importlib.util.spec_from_file_location("_validation_gallery", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


G = _gallery()

PORT_LEVEL_SUBSET = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
    outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 100}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {simple: ROUND_ROBIN}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 5}}
  - name: v3
    labels: {version: v3}
"""

CONSISTENT_HASH = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: end-user}}
  subsets:
  - {name: v1, labels: {version: v1}}
"""

# Valid neighbours of the gallery's invalid resources, built with the same builders.
GALLERY_VALID: dict[str, list[dict[str, Any]]] = {
    "timeout-1.5s": [G.vs(G.route(timeout="1.5s"))],
    "per-try-timeout-500ms": [G.vs(G.retries(attempts=2, perTryTimeout="500ms"))],
    "backoff-50ms": [G.vs(G.retries(attempts=2, backoff="50ms"))],
    "retry-on-codes": [G.vs(G.retries(attempts=3, retryOn="5xx,503"))],
    "retry-on-code-only": [G.vs(G.retries(attempts=1, retryOn="503,409"))],
    "retry-on-gateway-error-reset": [G.vs(G.retries(attempts=4, retryOn="gateway-error,reset"))],
    "retries-off": [G.vs(G.retries(attempts=0))],
    "retry-previous-hosts-off": [G.vs(G.retries(attempts=2, retryIgnorePreviousHosts=False))],
    "abort-percentage-0.57": [G.vs(G.abort(httpStatus=503, percentage={"value": 0.57}))],
    "abort-without-percentage": [G.vs(G.fault(abort={"httpStatus": 503}))],
    "abort-without-status": [G.vs(G.fault(abort={"percentage": {"value": 50}}))],
    "abort-grpc": [G.vs(G.abort(grpcStatus="UNAVAILABLE"))],
    "delay-deprecated-percent": [G.vs(G.fault(delay={"fixedDelay": "1s", "percent": 30}))],
    "delay-without-percentage": [G.vs(G.fault(delay={"fixedDelay": "1s"}))],
    "delay-and-abort": [
        G.vs(
            G.fault(
                delay={"fixedDelay": "100ms", "percentage": {"value": 10}},
                abort={"httpStatus": 500, "percentage": {"value": 0.1}},
            )
        )
    ],
    "weighted-with-zero": [
        G.vs(
            {
                "route": [
                    {**G.DEST, "weight": 10},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 0},
                ],
                "timeout": "2s",
            }
        )
    ],
    "mirror-50": [
        G.vs(G.route(mirror={"host": "reviews", "subset": "v2"}, mirrorPercentage={"value": 50}))
    ],
    "pool-max-connections": [G.pool(tcp={"maxConnections": 3})],
    "pool-zero-is-unset": [G.pool(tcp={"maxConnections": 0}, http={"http2MaxRequests": 4})],
    "pool-pending-and-requests": [
        G.pool(http={"http1MaxPendingRequests": 2, "http2MaxRequests": 3, "maxRetries": 1})
    ],
    "outlier-defaults": [G.outlier(interval="1s")],
    "outlier-gateway-only": [G.outlier(consecutiveGatewayErrors=2, maxEjectionPercent=0)],
    "outlier-5xx-off": [G.outlier(consecutive5xxErrors=0, minHealthPercent=20)],
    "outlier-full": [
        G.outlier(consecutive5xxErrors=1, baseEjectionTime="2m", maxEjectionPercent=100)
    ],
}


def _packaged() -> dict[str, str]:
    root = package_data.files("meshchaos") / "data" / "istio"
    return {p.name: p.read_text() for p in sorted(root.iterdir(), key=lambda p: p.name)}


CASES: dict[str, Callable[[], list[Resource]]] = {
    **{f"data/{name}": (lambda t=t: load_text(t)) for name, t in _packaged().items()},
    **{f"gallery/{k}": (lambda d=d: parse_documents(d, "x")) for k, d in GALLERY_VALID.items()},
    "port-level-subset": lambda: load_text(PORT_LEVEL_SUBSET),
    "consistent-hash": lambda: load_text(CONSISTENT_HASH + "---\n" + _yaml_vs("reviews", "v1", "")),
    "wildcard-host": lambda: load_text(
        _yaml_vs("reviews", "v1", "    timeout: 2s\n").replace(
            "hosts: [reviews]", "hosts: ['*.default.svc.cluster.local']"
        )
    ),
    "bookinfo-destination-rules": lambda: load_text(
        (package_data.files("meshchaos") / "data/bookinfo/destination-rule-all.yaml").read_text()
    ),
}


def _yaml_vs(host: str, subset: str, extra: str) -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        f"metadata: {{name: {host}}}\nspec:\n  hosts: [{host}]\n  http:\n"
        f"  - route:\n    - destination: {{host: {host}, subset: {subset}}}\n{extra}"
    )


# ------------------------------------------------------------------ Envoy JSON, read back
@dataclass(frozen=True)
class Facts:
    """One route's facts as plain values; both sides are brought to this form."""

    destinations: tuple[tuple[str, float], ...]  # (subset or "", share)
    timeout: float | None
    retries: int
    retry_on: frozenset[str]
    codes: frozenset[int]
    per_try: float | None
    previous_hosts: bool
    backoff: float
    delay: tuple[float, float]  # (probability, seconds)
    abort: tuple[float, int]  # (probability, HTTP status the client sees)
    mirrors: tuple[float, ...]


def _fraction(p: dict[str, Any] | None) -> float:
    if p is None:
        return 0.0  # Envoy reads an unset percentage as 0 (§5)
    scale = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}[p["denominator"]]
    return min(1.0, p.get("numerator", 0) / scale)


def _envoy_route_facts(route: dict[str, Any]) -> Facts:
    action = route["route"]
    rp = action.get("retry_policy") or {}
    fault = route.get("typed_per_filter_config", {}).get("envoy.filters.http.fault", {})
    delay_p, delay_s = 0.0, 0.0
    if "delay" in fault:
        delay_p = _fraction(fault["delay"]["percentage"])
        delay_s = parse_duration(fault["delay"]["fixed_delay"]) if delay_p else 0.0
    abort_p, abort_status = 0.0, 200
    if "abort" in fault:
        abort_p = _fraction(fault["abort"].get("percentage"))
        # A gRPC abort is HTTP 200 + grpc-status (§5); a status at 0 % never shows.
        abort_status = fault["abort"].get("http_status", 200) if abort_p else 200
    back_off = rp.get("retry_back_off", {}).get("base_interval")
    if "cluster" in action:
        destinations: tuple[tuple[str, float], ...] = ((action["cluster"].split("|")[2], 1.0),)
    else:
        weights = action["weighted_clusters"]["clusters"]
        total = sum(c["weight"] for c in weights)
        destinations = tuple((c["name"].split("|")[2], c["weight"] / total) for c in weights)
    return Facts(
        destinations=destinations,
        timeout=parse_duration(action["timeout"]) or None,  # 0s disables it (§3)
        retries=rp.get("num_retries", 0),
        retry_on=frozenset(t for t in rp.get("retry_on", "").split(",") if t),
        codes=frozenset(rp.get("retriable_status_codes", [])),
        per_try=parse_duration(rp["per_try_timeout"]) if "per_try_timeout" in rp else None,
        previous_hosts=bool(rp.get("retry_host_predicate")),
        backoff=parse_duration(back_off) if back_off else 0.025,  # Envoy's default base (§4)
        delay=(delay_p, delay_s),
        abort=(abort_p, abort_status),
        mirrors=tuple(
            _fraction(m["runtime_fraction"]["default_value"])
            for m in action.get("request_mirror_policies", [])
        ),
    )


def _oracle_route_facts(engine: Engine, http: HTTPRoute, port: int) -> Facts:
    f = engine.facts(http, port)
    r = f.retry
    fault = f.fault
    return Facts(
        destinations=tuple((d.destination.subset or "", share) for d, share in f.destinations),
        timeout=f.timeout,
        retries=r.retries,
        retry_on=r.on if r.retries else frozenset(),
        codes=r.codes if r.retries else frozenset(),
        per_try=r.per_try if r.retries else None,
        previous_hosts=r.previous_hosts if r.retries else False,
        backoff=r.backoff if r.retries else 0.025,
        delay=(fault.delay_p, fault.delay if fault.delay_p else 0.0),
        abort=(fault.abort_p, fault.status if fault.abort_p else 200),
        mirrors=tuple(p for _, p in f.mirrors),
    )


def _capacity(cluster: dict[str, Any]) -> float:
    t = cluster["circuit_breakers"]["thresholds"][0]

    def bound(key: str) -> float:
        return math.inf if t[key] == MAX_UINT32 else float(t[key])

    return min(bound("max_connections") + bound("max_pending_requests"), bound("max_requests"))


def _envoy_ejection(cluster: dict[str, Any]) -> tuple[Any, ...] | None:
    od = cluster.get("outlier_detection")
    if od is None:
        return None

    def seconds(key: str, default: float) -> float:
        return parse_duration(od[key]) if key in od else default

    # Envoy's outlier_detection.proto defaults: consecutive_5xx 5 enforced at 100 %,
    # consecutive_gateway_failure 5 enforced at 0 %, 10 s, 30 s, max 10 %.
    five = od.get("consecutive_5xx", 5) if od.get("enforcing_consecutive_5xx", 100) else 0
    gateway = od.get("consecutive_gateway_failure", 5)
    gateway = gateway if od.get("enforcing_consecutive_gateway_failure", 0) else 0
    panic = cluster["common_lb_config"]["healthy_panic_threshold"]["value"]
    return (
        five,
        gateway,
        seconds("interval", 10.0),
        seconds("base_ejection_time", 30.0),
        od.get("max_ejection_percent", 10),
        panic,
    )


def _oracle_ejection(ejection: Any) -> tuple[Any, ...] | None:
    if ejection is None:
        return None
    return (
        ejection.consecutive_5xx,
        ejection.consecutive_gateway_errors,
        ejection.interval,
        ejection.base_ejection_time,
        ejection.max_ejection_percent,
        float(ejection.min_health_percent),
    )


# ------------------------------------------------------------------------- translation
def _translate(resources: list[Resource]) -> Any:
    endpoints = [
        Endpoint(w.name, 0, 20000 + i, dict(w.labels), w.service, w.port)
        for i, w in enumerate(DEFAULT_WORKLOADS)
        if w.service and w.replicas
    ]
    client = find("client")
    proxy = ProxySpec("client-0", "sidecar", dict(client.labels), client, None)
    return translate_proxy(proxy, resources, endpoints, DEFAULT_WORKLOADS)


def _vhost_routes(config: Any, fqdn: str, port: int) -> list[dict[str, Any]]:
    (rc,) = [r for r in config.route_configs if r["name"] == "outbound"]
    (vh,) = [v for v in rc["virtual_hosts"] if v["name"] == f"{fqdn}:{port}"]
    return list(vh["routes"])


def _mesh_services(vs: VirtualService) -> list[str]:
    hosts = [resolve_host(h, vs.metadata.namespace) for h in vs.hosts]
    return [s for s in SERVICES if any(host_matches(h, s + SUFFIX) for h in hosts)]


SERVICES = {name: svc.port for name, svc in BOOKINFO.services.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_routes_agree(case: str) -> None:
    resources = CASES[case]()
    engine = Engine(resources, BOOKINFO)
    compared = 0
    routed: set[str] = set()
    for vs in [r for r in resources if isinstance(r, VirtualService)]:
        if vs.gateways and "mesh" not in vs.gateways:
            continue
        for svc in _mesh_services(vs):
            routed.add(svc)
            port = SERVICES[svc]
            for http in vs.http:
                if not http.route:
                    continue  # redirect or direct response: no timeout, retries or mirror
                # One entry alone, its match dropped, is one Envoy route carrying its action.
                alone = replace(vs, http=(replace(http, match=()),))
                others = [r for r in resources if r is not vs]
                (route,) = _vhost_routes(_translate([*others, alone]), svc + SUFFIX, port)
                envoy = _envoy_route_facts(route)
                assert envoy == _oracle_route_facts(engine, http, port), (case, svc, http.name)
                compared += 1
    config = _translate(resources)
    for svc, port in SERVICES.items():
        if svc in routed:
            continue
        (route,) = _vhost_routes(config, svc + SUFFIX, port)  # the default route (§2)
        default = HTTPRoute(route=(HTTPRouteDestination(Destination(svc)),))
        assert _envoy_route_facts(route) == _oracle_route_facts(engine, default, port), svc
        compared += 1
    assert compared >= len(SERVICES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_clusters_agree(case: str) -> None:
    resources = CASES[case]()
    config = _translate(resources)
    outbound = [c for c in config.clusters if c["name"].startswith("outbound|")]
    assert outbound
    for cluster in outbound:
        _, port, subset, fqdn = cluster["name"].split("|")
        svc = service_name(fqdn)
        capacity, ejection = cluster_limits(resources, svc, subset or None, int(port))
        assert _capacity(cluster) == capacity, cluster["name"]
        assert _envoy_ejection(cluster) == _oracle_ejection(ejection), cluster["name"]


VS_CHOICE = {
    "duplicate-host": _yaml_vs("reviews", "v1", "").replace("name: reviews", "name: first")
    + "---\n"
    + _yaml_vs("reviews", "v2", "").replace("name: reviews", "name: second"),
    "wildcard-then-exact": _yaml_vs("reviews", "v1", "")
    .replace("name: reviews", "name: wild")
    .replace("hosts: [reviews]", "hosts: ['*.default.svc.cluster.local']")
    + "---\n"
    + _yaml_vs("reviews", "v2", "").replace("name: reviews", "name: exact"),
    "namespace-qualified-short-name": _yaml_vs("reviews", "v1", "").replace(
        "hosts: [reviews]", "hosts: [reviews.default]"
    ),
    "fqdn": _yaml_vs("reviews", "v1", "").replace(
        "hosts: [reviews]", "hosts: [reviews.default.svc.cluster.local]"
    ),
}


@pytest.mark.parametrize("case", sorted(VS_CHOICE))
def test_virtual_service_choice_agrees(case: str) -> None:
    """Which VirtualService routes each service (§1 duplicates, §2 host resolution)."""
    resources = load_text(VS_CHOICE[case])
    config = _translate(resources)
    for svc, port in SERVICES.items():
        routes = _vhost_routes(config, svc + SUFFIX, port)
        meta = routes[0].get("metadata", {}).get("filter_metadata", {}).get("istio", {})
        mesh = meta["config"].rsplit("/", 1)[-1] if meta else None
        chosen = find_virtual_service(resources, svc, None)
        assert mesh == (chosen.metadata.name if chosen else None), (case, svc)


def test_port_level_subset_has_no_pool_on_both_sides() -> None:
    """The case that once disagreed: a subset port entry replaces the top-level pool (§7)."""
    resources = load_text(PORT_LEVEL_SUBSET)
    config = _translate(resources)
    (v1,) = [c for c in config.clusters if c["name"] == f"outbound|9080|v1|reviews{SUFFIX}"]
    assert _capacity(v1) == math.inf
    assert "outlier_detection" not in v1
    assert cluster_limits(resources, "reviews", "v1", 9080) == (math.inf, None)
    assert cluster_limits(resources, "reviews", "v3", 9080)[0] == 2  # top level: 1 + 1


def test_consistent_hash_drops_previous_hosts_on_both_sides() -> None:
    resources = CASES["consistent-hash"]()
    (route,) = _vhost_routes(_translate(resources), "reviews" + SUFFIX, 9080)
    assert not _envoy_route_facts(route).previous_hosts
    vs = next(r for r in resources if isinstance(r, VirtualService))
    assert not Engine(resources, BOOKINFO).facts(vs.http[0], 9080).retry.previous_hosts


SELECTORS = {
    "none": "",
    "labels-match": "      sourceLabels: {app: client}\n",
    "labels-miss": "      sourceLabels: {app: productpage}\n",
    "namespace-match": "      sourceNamespace: default\n",
    "namespace-miss": "      sourceNamespace: shop\n",
    "mesh-gateway-overrides-labels": "      gateways: [mesh]\n      sourceLabels: {app: nope}\n",
    "other-gateway": "      gateways: [bookinfo-gateway]\n",
}


def test_proxy_selectors_agree() -> None:
    """Which routes exist on the client's sidecar (§1 ``sourceMatchHTTP``) agrees."""
    http = "".join(
        f"  - name: {name}\n    match:\n    - headers: {{x-route: {{exact: {name}}}}}\n"
        f"{extra}    route:\n    - destination: {{host: reviews}}\n"
        for name, extra in SELECTORS.items()
    )
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n"
        f"spec:\n  hosts: [reviews]\n  gateways: [mesh, bookinfo-gateway]\n  http:\n{http}"
    )
    (vs,) = load_text(text)
    assert isinstance(vs, VirtualService)
    routes = _vhost_routes(_translate([vs]), "reviews" + SUFFIX, 9080)
    in_mesh = {r["name"] for r in routes}
    labels = dict(find("client").labels)
    for name in SELECTORS:
        req = Request("/", {"x-route": name})
        picked = pick_route(vs, req, 9080, "reviews:9080", labels, None)
        in_oracle = picked is not None and picked.route.name == name
        assert (name in in_mesh) == in_oracle, name
    assert in_mesh == {"none", "labels-match", "namespace-match", "mesh-gateway-overrides-labels"}
