"""Istio -> Envoy translation of the local mesh: golden Envoy JSON plus targeted checks.

Regenerate the golden files with ``MESHCHAOS_UPDATE_GOLDEN=1 pytest tests/unit/mesh/local``
and review the diff against docs/ISTIO_SEMANTICS.md before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from meshchaos.apps.catalog import DEFAULT_WORKLOADS, find
from meshchaos.apps.facts import INGRESS_GATEWAY
from meshchaos.istio import Resource, load_text
from meshchaos.mesh.local.service_registry import Endpoint, ProxySpec
from meshchaos.mesh.local.translate import bootstrap, translate_proxy, xds_files

GOLDEN = Path(__file__).parent / "golden"
MANIFESTS = Path(__file__).resolve().parents[4] / "manifests"
UPDATE = os.environ.get("MESHCHAOS_UPDATE_GOLDEN") == "1"
REVIEWS = "reviews.default.svc.cluster.local"
RATINGS = "ratings.default.svc.cluster.local"
HTTPBIN = "httpbin.default.svc.cluster.local"


def check_golden(name: str, data: Any) -> None:
    """Compare ``data`` with ``golden/<name>.json``; rewrite it when MESHCHAOS_UPDATE_GOLDEN=1."""
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if UPDATE or not path.exists():
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"golden file {path} was missing and has been written; review it")
    assert json.loads(path.read_text()) == json.loads(text), f"differs from {path}"


def endpoints() -> list[Endpoint]:
    out = []
    for i, w in enumerate(DEFAULT_WORKLOADS):
        if w.service and w.replicas:
            out.append(Endpoint(w.name, 0, 20000 + i, dict(w.labels), w.service, w.port))
    return out


def sidecar(workload: str) -> ProxySpec:
    w = find(workload)
    app_port = None if not w.service else 30000
    return ProxySpec(f"{workload}-0", "sidecar", dict(w.labels), w, app_port)


GATEWAY_PROXY = ProxySpec(INGRESS_GATEWAY.name, "gateway", dict(INGRESS_GATEWAY.labels))


def translate(proxy: ProxySpec, resources: list[Resource]) -> Any:
    return translate_proxy(proxy, resources, endpoints(), DEFAULT_WORKLOADS)


def vhost(config: Any, fqdn: str, port: int = 9080) -> dict[str, Any]:
    (rc,) = [r for r in config.route_configs if r["name"] == "outbound"]
    (vh,) = [v for v in rc["virtual_hosts"] if v["name"] == f"{fqdn}:{port}"]
    return dict(vh)


def cluster(config: Any, name: str) -> dict[str, Any]:
    (c,) = [c for c in config.clusters if c["name"] == name]
    return dict(c)


def bookinfo() -> list[Resource]:
    return load_text(
        (MANIFESTS / "bookinfo/bookinfo-gateway.yaml").read_text()
        + "\n---\n"
        + (MANIFESTS / "bookinfo/destination-rule-all.yaml").read_text()
    )


def vs(yaml: str) -> list[Resource]:
    return load_text(yaml)


REQUEST_ROUTING = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
"""

FAULT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - name: delay-jason
    match:
    - headers: {end-user: {exact: jason}}
    fault:
      delay: {fixedDelay: 7s, percentage: {value: 0.57}}
      abort: {httpStatus: 500, percentage: {value: 50}}
    route:
    - destination: {host: ratings, subset: v1}
  - name: legacy
    match:
    - headers: {end-user: {prefix: legacy}}
    fault:
      delay: {fixedDelay: 2s, percent: 25}
      abort: {grpcStatus: UNAVAILABLE}
    route:
    - destination: {host: ratings, subset: v1}
  - name: no-percentage
    fault:
      delay: {fixedDelay: 1s}
      abort: {httpStatus: 503, percentage: {value: 100}}
    route:
    - destination: {host: ratings, subset: v1}
"""

TIMEOUT_RETRIES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - timeout: 1.5s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,503,gateway-error",
              retryIgnorePreviousHosts: false, backoff: 50ms}
    route:
    - destination: {host: reviews, subset: v2}
"""

WEIGHTED = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
      headers: {request: {set: {x-canary: "no"}}}
    - destination: {host: reviews, subset: v3}
      weight: 50
    - destination: {host: reviews, subset: v2}
      weight: 0
"""

MIRROR = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
      weight: 100
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 50}
"""

DR_POLICY = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1, idleTimeout: 30s}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
    portLevelSettings:
    - port: {number: 9080}
      connectionPool:
        http: {http2MaxRequests: 7, maxRetries: 3}
      outlierDetection: {consecutiveGatewayErrors: 2, minHealthPercent: 20}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      connectionPool:
        tcp: {maxConnections: 5}
      outlierDetection: {consecutive5xxErrors: 0}
  - name: v3
    labels: {version: v3}
"""

SOURCE_LABELS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match:
    - sourceLabels: {app: reviews, version: v2}
    fault:
      abort: {httpStatus: 503, percentage: {value: 100}}
    route:
    - destination: {host: ratings, subset: v1}
"""

CATCH_ALL = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: first
    match:
    - uri: {prefix: /reviews}
      ignoreUriCase: true
    - uri: {regex: ".*"}
    - uri: {exact: /never}
    route:
    - destination: {host: reviews, subset: v1}
  - name: unreachable
    route:
    - destination: {host: reviews, subset: v2}
"""


# ------------------------------------------------------------------ golden
def test_golden_bookinfo_gateway() -> None:
    config = translate(GATEWAY_PROXY, bookinfo())
    assert config.warnings == ()
    check_golden(
        "bookinfo_gateway", {"route_configs": config.route_configs, "clusters": config.clusters}
    )
    (rc,) = config.route_configs
    assert rc["name"] == "http.8080"
    (vh,) = rc["virtual_hosts"]
    assert vh["domains"] == ["*"]
    assert [r["match"] for r in vh["routes"]][:2] == [
        {"path": "/productpage", "case_sensitive": True},
        {"prefix": "/static", "case_sensitive": True},
    ]
    assert {r["route"]["cluster"] for r in vh["routes"]} == {
        "outbound|9080||productpage.default.svc.cluster.local"
    }


def test_golden_bookinfo_sidecar_default_routes() -> None:
    config = translate(sidecar("productpage-v1"), bookinfo())
    check_golden(
        "bookinfo_productpage_sidecar",
        {"route_configs": config.route_configs, "clusters": config.clusters},
    )
    names = [c["name"] for c in config.clusters]
    assert f"outbound|9080|v-faulty|{RATINGS}" in names
    assert "inbound|9080||" in names
    route = vhost(config, REVIEWS)["routes"][0]
    assert route["route"]["timeout"] == "0s"
    assert route["route"]["retry_policy"]["num_retries"] == 2
    assert "retriable_status_codes" not in route["route"]["retry_policy"]
    # Subset cluster members match the subset labels only.
    ports = [
        e["endpoint"]["address"]["socket_address"]["port_value"]
        for e in cluster(config, f"outbound|9080|v2|{REVIEWS}")["load_assignment"]["endpoints"][0][
            "lb_endpoints"
        ]
    ]
    assert ports == [20003]


@pytest.mark.parametrize(
    ("name", "yaml", "proxy", "fqdn", "port"),
    [
        pytest.param(
            "request_routing",
            REQUEST_ROUTING,
            "productpage-v1",
            REVIEWS,
            9080,
            id="reviews-jason-v2",
        ),
        pytest.param("fault", FAULT, "reviews-v2", RATINGS, 9080, id="ratings-fault"),
        pytest.param(
            "timeout_retries",
            TIMEOUT_RETRIES,
            "productpage-v1",
            REVIEWS,
            9080,
            id="reviews-timeout-retries",
        ),
        pytest.param("weighted", WEIGHTED, "productpage-v1", REVIEWS, 9080, id="weighted-50-50"),
        pytest.param("mirror", MIRROR, "client", HTTPBIN, 8000, id="httpbin-mirror-50"),
        pytest.param(
            "source_labels_v2",
            SOURCE_LABELS,
            "reviews-v2",
            RATINGS,
            9080,
            id="source-labels-reviews-v2",
        ),
        pytest.param(
            "source_labels_productpage",
            SOURCE_LABELS,
            "productpage-v1",
            RATINGS,
            9080,
            id="source-labels-productpage",
        ),
        pytest.param(
            "catch_all", CATCH_ALL, "productpage-v1", REVIEWS, 9080, id="catch-all-truncation"
        ),
    ],
)
def test_golden_vhost(name: str, yaml: str, proxy: str, fqdn: str, port: int) -> None:
    config = translate(sidecar(proxy), [*bookinfo(), *vs(yaml)])
    check_golden(f"vhost_{name}", vhost(config, fqdn, port))


def test_golden_destination_rule_clusters() -> None:
    config = translate(sidecar("productpage-v1"), vs(DR_POLICY))
    reviews = [c for c in config.clusters if c["name"].endswith(REVIEWS)]
    check_golden("clusters_reviews_dr", reviews)


# ------------------------------------------------------------------ targeted rules
def test_request_routing_header_match() -> None:
    routes = vhost(
        translate(sidecar("productpage-v1"), [*bookinfo(), *vs(REQUEST_ROUTING)]), REVIEWS
    )["routes"]
    assert routes[0]["match"]["headers"] == [
        {"name": "end-user", "string_match": {"exact": "jason"}}
    ]
    assert routes[0]["route"]["cluster"] == f"outbound|9080|v2|{REVIEWS}"
    assert routes[1]["match"] == {"prefix": "/"}
    assert len(routes) == 2


def test_fault_percentages() -> None:
    routes = vhost(translate(sidecar("reviews-v2"), vs(FAULT)), RATINGS)["routes"]
    f0 = routes[0]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert f0["delay"] == {
        "fixed_delay": "7s",
        "percentage": {"numerator": 5699, "denominator": "MILLION"},
    }
    assert f0["abort"] == {
        "http_status": 500,
        "percentage": {"numerator": 500000, "denominator": "MILLION"},
    }
    f1 = routes[1]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert f1["delay"]["percentage"] == {"numerator": 25, "denominator": "HUNDRED"}
    assert f1["abort"] == {
        "grpc_status": 14,
        "percentage": {"numerator": 0, "denominator": "HUNDRED"},
    }
    f2 = routes[2]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert "delay" not in f2  # no percentage at all -> 0 % -> omitted
    assert f2["abort"]["percentage"] == {"numerator": 1000000, "denominator": "MILLION"}


def test_timeout_and_user_retries() -> None:
    action = vhost(
        translate(sidecar("productpage-v1"), [*bookinfo(), *vs(TIMEOUT_RETRIES)]), REVIEWS
    )["routes"][0]["route"]
    assert action["timeout"] == "1.500s"
    assert action["max_grpc_timeout"] == "1.500s"
    assert action["retry_policy"] == {
        "retry_on": "5xx,gateway-error,retriable-status-codes",
        "retriable_status_codes": [503],
        "num_retries": 3,
        "per_try_timeout": "0.500s",
        "host_selection_retry_max_attempts": 5,
        "retry_back_off": {"base_interval": "0.050s"},
    }


def test_attempts_zero_means_no_retry_policy() -> None:
    yaml = REQUEST_ROUTING.replace("  - route:\n", "  - retries: {attempts: 0}\n    route:\n")
    routes = vhost(translate(sidecar("productpage-v1"), [*bookinfo(), *vs(yaml)]), REVIEWS)[
        "routes"
    ]
    assert "retry_policy" in routes[0]["route"]
    assert "retry_policy" not in routes[1]["route"]


def test_weighted_skips_zero_and_keeps_raw_weights() -> None:
    action = vhost(translate(sidecar("productpage-v1"), [*bookinfo(), *vs(WEIGHTED)]), REVIEWS)[
        "routes"
    ][0]["route"]
    clusters = action["weighted_clusters"]["clusters"]
    assert [(c["name"], c["weight"]) for c in clusters] == [
        (f"outbound|9080|v1|{REVIEWS}", 50),
        (f"outbound|9080|v3|{REVIEWS}", 50),
    ]
    assert "total_weight" not in action["weighted_clusters"]
    assert clusters[0]["request_headers_to_add"][0]["header"] == {"key": "x-canary", "value": "no"}


def test_mirror_fraction_and_no_shadow_suffix() -> None:
    action = vhost(translate(sidecar("client"), [*vs(MIRROR)]), HTTPBIN, 8000)["routes"][0]["route"]
    assert action["cluster"] == f"outbound|8000|v1|{HTTPBIN}"  # single dest: weight ignored
    (mp,) = action["request_mirror_policies"]
    assert mp["cluster"] == f"outbound|8000|v2|{HTTPBIN}"
    assert mp["runtime_fraction"]["default_value"] == {
        "numerator": 500000,
        "denominator": "MILLION",
    }
    assert mp["disable_shadow_host_suffix_append"] is True


def test_mirror_absent_percentage_is_100_and_zero_is_none() -> None:
    absent = MIRROR.replace("    mirrorPercentage: {value: 50}\n", "")
    action = vhost(translate(sidecar("client"), vs(absent)), HTTPBIN, 8000)["routes"][0]["route"]
    assert action["request_mirror_policies"][0]["runtime_fraction"]["default_value"] == {
        "numerator": 100,
        "denominator": "HUNDRED",
    }
    zero = MIRROR.replace("{value: 50}", "{value: 0}")
    action = vhost(translate(sidecar("client"), vs(zero)), HTTPBIN, 8000)["routes"][0]["route"]
    assert "request_mirror_policies" not in action


def test_destination_rule_port_level_and_subset_merge() -> None:
    config = translate(sidecar("productpage-v1"), vs(DR_POLICY))
    default = cluster(config, f"outbound|9080||{REVIEWS}")
    # The port-level entry replaces the whole top-level policy: no maxConnections, 10 s connect.
    assert default["circuit_breakers"]["thresholds"][0] == {
        "max_connections": 4294967295,
        "max_pending_requests": 4294967295,
        "max_requests": 7,
        "max_retries": 3,
    }
    assert default["connect_timeout"] == "10s"
    assert default["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_gateway_failure": 2,
        "enforcing_consecutive_gateway_failure": 100,
    }
    assert default["common_lb_config"] == {"healthy_panic_threshold": {"value": 20.0}}
    assert default["lb_policy"] == "LEAST_REQUEST"
    v1 = cluster(config, f"outbound|9080|v1|{REVIEWS}")
    assert v1["lb_policy"] == "ROUND_ROBIN"
    assert v1["circuit_breakers"] == default["circuit_breakers"]
    v2 = cluster(config, f"outbound|9080|v2|{REVIEWS}")
    assert v2["circuit_breakers"]["thresholds"][0]["max_connections"] == 5
    assert v2["circuit_breakers"]["thresholds"][0]["max_requests"] == 4294967295
    assert v2["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_5xx": 0,
        "enforcing_consecutive_5xx": 0,
    }
    assert v2["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}


def test_destination_rule_top_level_pool_reaches_inbound_and_outbound() -> None:
    yaml = DR_POLICY.split("    portLevelSettings:")[0]
    server = translate(sidecar("reviews-v1"), vs(yaml))
    inbound = cluster(server, "inbound|9080||")
    assert inbound["circuit_breakers"]["thresholds"][0]["max_connections"] == 1
    assert inbound["connect_timeout"] == "0.250s"
    assert "outlier_detection" not in inbound
    assert "lb_policy" not in inbound
    options = inbound["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert options["common_http_protocol_options"] == {
        "idle_timeout": "30s",
        "max_requests_per_connection": 1,
    }
    assert inbound["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"] == {
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 30000}}
    }
    out = cluster(server, f"outbound|9080||{REVIEWS}")
    assert out["outlier_detection"]["max_ejection_percent"] == 100
    assert out["outlier_detection"]["base_ejection_time"] == "180s"


def test_source_labels_select_proxy() -> None:
    v2 = vhost(translate(sidecar("reviews-v2"), vs(SOURCE_LABELS)), RATINGS)["routes"]
    assert "typed_per_filter_config" in v2[0]
    pp = vhost(translate(sidecar("productpage-v1"), vs(SOURCE_LABELS)), RATINGS)["routes"]
    assert pp == [vhost(translate(sidecar("productpage-v1"), []), RATINGS)["routes"][0]]
    assert pp[0]["name"] == "default"


def test_catch_all_truncates_later_matches_and_routes() -> None:
    routes = vhost(translate(sidecar("productpage-v1"), vs(CATCH_ALL)), REVIEWS)["routes"]
    assert [r["match"] for r in routes] == [
        {"prefix": "/reviews", "case_sensitive": False},
        {"safe_regex": {"regex": ".*"}, "case_sensitive": True},
    ]


def test_outbound_domains_and_block_all() -> None:
    config = translate(sidecar("client"), [])
    (rc,) = config.route_configs  # a client has no inbound
    assert rc["validate_clusters"] is False
    vh = vhost(config, REVIEWS)
    assert vh["include_request_attempt_count"] is True
    assert set(vh["domains"]) == {
        f"{n}{p}"
        for n in ("reviews", "reviews.default", "reviews.default.svc", REVIEWS)
        for p in ("", ":9080")
    }
    assert rc["virtual_hosts"][-1]["domains"] == ["*"]
    assert rc["virtual_hosts"][-1]["routes"][0]["direct_response"] == {"status": 502}
    all_domains = [d for v in rc["virtual_hosts"] for d in v["domains"]]
    assert len(all_domains) == len(set(all_domains))


def test_match_translation_details() -> None:
    yaml = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - name: r
    match:
    - name: m
      uri: {exact: /get}
      headers: {x-b: {}, X-A: {prefix: p}}
      withoutHeaders: {end-user: {exact: jason}, x-gone: {}}
      queryParams: {q: {exact: "1"}}
      method: {exact: GET}
      authority: {prefix: httpbin}
    route: [{destination: {host: httpbin}}]
"""
    route = vhost(translate(sidecar("client"), vs(yaml)), HTTPBIN, 8000)["routes"][0]
    assert route["name"] == "r.m"
    assert route["match"]["headers"] == [
        {"name": "X-A", "string_match": {"prefix": "p"}},
        {
            "name": "end-user",
            "string_match": {"exact": "jason"},
            "invert_match": True,
            "treat_missing_header_as_empty": True,
        },
        {"name": "x-b", "present_match": True},
        {"name": "x-gone", "present_match": True, "invert_match": True},
        {"name": ":method", "string_match": {"exact": "GET"}},
        {"name": ":authority", "string_match": {"prefix": "httpbin"}},
    ]
    assert route["match"]["query_parameters"] == [{"name": "q", "string_match": {"exact": "1"}}]
    assert route["route"]["cluster"] == f"outbound|8000||{HTTPBIN}"


def test_gateway_other_ports_warn() -> None:
    yaml = (
        (MANIFESTS / "bookinfo/bookinfo-gateway.yaml")
        .read_text()
        .replace("number: 8080", "number: 443")
    )
    config = translate(GATEWAY_PROXY, load_text(yaml))
    assert any("443" in w for w in config.warnings)
    assert config.route_configs[0]["virtual_hosts"] == []


def test_xds_files_and_bootstrap(tmp_path: Path) -> None:
    proxy = sidecar("reviews-v2")
    config = translate(proxy, bookinfo())
    files = xds_files(config, "7")
    assert set(files) == {"cds.json", "rds_outbound.json", "rds_inbound.json"}
    assert files["rds_outbound.json"]["version_info"] == "7"
    (res,) = files["rds_outbound.json"]["resources"]
    assert res["@type"] == "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    assert files["cds.json"]["resources"][0]["@type"].endswith("cluster.v3.Cluster")
    boot = bootstrap(proxy, tmp_path)
    names = [ls["name"] for ls in boot["static_resources"]["listeners"]]
    assert names == ["outbound", "inbound"]
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["stat_prefix"] == "outbound"
    assert hcm["use_remote_address"] is False
    assert [f["name"] for f in hcm["http_filters"]] == [
        "envoy.filters.http.fault",
        "envoy.filters.http.router",
    ]
    assert hcm["rds"]["config_source"]["path_config_source"]["path"] == str(
        tmp_path.resolve() / "rds_outbound.json"
    )
    assert [
        ls["name"] for ls in bootstrap(sidecar("client"), tmp_path)["static_resources"]["listeners"]
    ] == ["outbound"]
    gw = bootstrap(GATEWAY_PROXY, tmp_path)["static_resources"]["listeners"][0]
    assert gw["name"] == "http.8080"
    assert gw["filter_chains"][0]["filters"][0]["typed_config"]["use_remote_address"] is True


def test_translation_is_deterministic() -> None:
    a = translate(sidecar("productpage-v1"), [*bookinfo(), *vs(WEIGHTED)])
    b = translate(sidecar("productpage-v1"), [*bookinfo(), *vs(WEIGHTED)])
    assert json.dumps(a.route_configs) == json.dumps(b.route_configs)
    assert json.dumps(a.clusters) == json.dumps(b.clusters)
