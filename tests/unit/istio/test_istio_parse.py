"""Parsing valid Istio YAML into the typed model, field family by field family."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from meshchaos.errors import ConfigInvalid
from meshchaos.istio import (
    DestinationRule,
    Gateway,
    LoadBalancerSimple,
    MatchKind,
    StringMatch,
    VirtualService,
    dump,
    load_file,
    load_files,
    load_text,
    parse_documents,
    parse_resource,
)


def _one_vs(body: str) -> VirtualService:
    text = textwrap.dedent(
        """\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews}
        spec:
          hosts: [reviews]
        """
    ) + textwrap.indent(textwrap.dedent(body), "  ")
    (resource,) = load_text(text, "vs.yaml")
    assert isinstance(resource, VirtualService)
    return resource


def _one_dr(body: str) -> DestinationRule:
    text = textwrap.dedent(
        """\
        apiVersion: networking.istio.io/v1beta1
        kind: DestinationRule
        metadata: {name: reviews, namespace: shop}
        spec:
          host: reviews
        """
    ) + textwrap.indent(textwrap.dedent(body), "  ")
    (resource,) = load_text(text, "dr.yaml")
    assert isinstance(resource, DestinationRule)
    return resource


def test_match_kinds_headers_presence_and_query() -> None:
    vs = _one_vs(
        """\
        http:
        - name: jason
          match:
          - name: m0
            uri: {prefix: /api}
            method: {exact: GET}
            headers:
              end-user: {exact: jason}
              X-Upper-Case: {regex: "v[0-9]+"}
              x-present: {}
            withoutHeaders:
              x-skip: {prefix: yes-}
            queryParams:
              debug: {exact: "1"}
            ignoreUriCase: true
            port: 9080
            sourceLabels: {app: productpage}
            sourceNamespace: default
            gateways: [mesh]
          - uri: {regex: "/reviews/.*"}
          route:
          - destination: {host: reviews, subset: v2}
        """
    )
    (route,) = vs.http
    assert route.name == "jason"
    first, second = route.match
    assert first.name == "m0"
    assert first.uri == StringMatch(MatchKind.PREFIX, "/api")
    assert first.method == StringMatch(MatchKind.EXACT, "GET")
    assert first.headers == {
        "end-user": StringMatch(MatchKind.EXACT, "jason"),
        "X-Upper-Case": StringMatch(MatchKind.REGEX, "v[0-9]+"),
        "x-present": StringMatch(None),
    }
    assert first.without_headers == {"x-skip": StringMatch(MatchKind.PREFIX, "yes-")}
    assert first.query_params == {"debug": StringMatch(MatchKind.EXACT, "1")}
    assert first.ignore_uri_case is True
    assert first.port == 9080
    assert first.source_labels == {"app": "productpage"}
    assert first.source_namespace == "default"
    assert first.gateways == ("mesh",)
    assert second.uri == StringMatch(MatchKind.REGEX, "/reviews/.*")
    assert not first.is_catch_all()


def test_no_match_and_empty_uri_are_catch_all() -> None:
    vs = _one_vs(
        """\
        http:
        - match:
          - uri: {}
          route:
          - destination: {host: reviews}
        - route:
          - destination: {host: reviews}
        """
    )
    assert vs.http[0].match[0].uri is None
    assert vs.http[0].match[0].is_catch_all()
    assert vs.http[1].match == ()


def test_weights_default_zero_and_are_not_normalised() -> None:
    vs = _one_vs(
        """\
        http:
        - route:
          - destination: {host: reviews, subset: v1}
            weight: 1
          - destination: {host: reviews, subset: v2, port: {number: 9080}}
            weight: 2
          - destination: {host: reviews, subset: v3}
        """
    )
    weights = [d.weight for d in vs.http[0].route]
    assert weights == [1, 2, 0]
    assert vs.http[0].route[1].destination.port is not None
    assert vs.http[0].route[1].destination.port.number == 9080
    assert vs.http[0].route[2].destination.subset == "v3"


def test_fault_percentage_and_deprecated_percent() -> None:
    vs = _one_vs(
        """\
        http:
        - fault:
            delay: {fixedDelay: 7s, percentage: {value: 0.1}}
            abort: {httpStatus: 500, percentage: {value: 50}}
          route: [{destination: {host: reviews}}]
        - fault:
            delay: {fixedDelay: 500ms, percent: 50}
            abort: {grpcStatus: UNAVAILABLE}
          route: [{destination: {host: reviews}}]
        """
    )
    first, second = (r.fault for r in vs.http)
    assert first is not None
    assert first.delay is not None
    assert first.abort is not None
    assert first.delay.fixed_delay == pytest.approx(7.0)
    assert first.delay.percentage == pytest.approx(0.1)
    assert first.delay.percent is None
    assert first.abort.http_status == 500
    assert first.abort.percentage == 50.0
    assert second is not None
    assert second.delay is not None
    assert second.abort is not None
    assert second.delay.fixed_delay == pytest.approx(0.5)
    assert second.delay.percentage is None
    assert second.delay.percent == 50
    # No percentage at all: unset, which Envoy treats as 0 % (docs/ISTIO_SEMANTICS.md §5).
    assert second.abort.percentage is None
    assert second.abort.grpc_status == "UNAVAILABLE"


def test_mirror_variants() -> None:
    vs = _one_vs(
        """\
        http:
        - route: [{destination: {host: reviews, subset: v1}}]
          mirror: {host: reviews, subset: v2}
          mirrorPercentage: {value: 12.5}
        - route: [{destination: {host: reviews, subset: v1}}]
          mirror: {host: reviews, subset: v2}
          mirrorPercent: 30
        - route: [{destination: {host: reviews, subset: v1}}]
          mirror: {host: reviews, subset: v2}
        - route: [{destination: {host: reviews, subset: v1}}]
          mirrors:
          - destination: {host: reviews, subset: v2}
            percentage: {value: 5}
          - destination: {host: reviews, subset: v3}
        """
    )
    pct, legacy, full, many = vs.http
    assert pct.mirror_percentage == 12.5
    assert legacy.mirror_percentage == 30.0
    assert full.mirror_percentage is None  # absent means 100 %
    assert full.mirror_policies()[0].destination.subset == "v2"
    assert [(m.destination.subset, m.percentage) for m in many.mirror_policies()] == [
        ("v2", 5.0),
        ("v3", None),
    ]


def test_retries_timeout_and_header_operations() -> None:
    vs = _one_vs(
        """\
        http:
        - timeout: 1.5s
          retries:
            attempts: 3
            perTryTimeout: 250ms
            retryOn: gateway-error,connect-failure,503
            retryRemoteLocalities: true
            retryIgnorePreviousHosts: false
            backoff: 2m
          headers:
            request:
              set: {x-a: "1", Host: reviews.example}
              add: {x-b: "2"}
              remove: [x-c]
            response:
              remove: [x-d]
          route:
          - destination: {host: reviews}
            headers:
              response: {set: {x-version: v1}}
        - retries: {attempts: 0}
          route: [{destination: {host: reviews}}]
        """
    )
    first, second = vs.http
    assert first.timeout == pytest.approx(1.5)
    assert first.retries is not None
    assert first.retries.attempts == 3
    assert first.retries.per_try_timeout == pytest.approx(0.25)
    assert first.retries.retry_on == "gateway-error,connect-failure,503"
    assert first.retries.retry_remote_localities is True
    assert first.retries.retry_ignore_previous_hosts is False
    assert first.retries.backoff == pytest.approx(120.0)
    assert first.headers is not None
    assert first.headers.request is not None
    assert first.headers.request.set == {"x-a": "1", "Host": "reviews.example"}
    assert first.headers.request.remove == ("x-c",)
    dest_headers = first.route[0].headers
    assert dest_headers is not None
    assert dest_headers.response is not None
    assert dest_headers.response.set == {"x-version": "v1"}
    assert second.retries is not None
    assert second.retries.attempts == 0


def test_redirect_direct_response_and_rewrite() -> None:
    vs = _one_vs(
        """\
        http:
        - match: [{uri: {exact: /old}}]
          redirect: {uri: /new, redirectCode: 302}
        - match: [{uri: {exact: /teapot}}]
          directResponse: {status: 418, body: {string: short and stout}}
        - rewrite: {uri: /v2, authority: reviews-v2}
          route: [{destination: {host: reviews}}]
        """
    )
    redirect, direct, rewrite = vs.http
    assert redirect.redirect is not None
    assert (redirect.redirect.uri, redirect.redirect.redirect_code) == ("/new", 302)
    assert direct.direct_response is not None
    assert (direct.direct_response.status, direct.direct_response.body) == (418, "short and stout")
    assert rewrite.rewrite is not None
    assert rewrite.rewrite.authority == "reviews-v2"


def test_destination_rule_pools_outlier_lb_and_port_level() -> None:
    dr = _one_dr(
        """\
        trafficPolicy:
          loadBalancer: {simple: ROUND_ROBIN}
          connectionPool:
            tcp: {maxConnections: 1, connectTimeout: 250ms, idleTimeout: 0s}
            http:
              http1MaxPendingRequests: 1
              http2MaxRequests: 10
              maxRequestsPerConnection: 1
              maxRetries: 0
              idleTimeout: 30s
              h2UpgradePolicy: DO_NOT_UPGRADE
          outlierDetection:
            consecutive5xxErrors: 1
            consecutiveGatewayErrors: 2
            interval: 1s
            baseEjectionTime: 3m
            maxEjectionPercent: 100
            minHealthPercent: 0
          portLevelSettings:
          - port: {number: 9080}
            loadBalancer:
              consistentHash: {httpCookie: {name: user, ttl: 0s}}
        subsets:
        - name: v1
          labels: {version: v1}
          trafficPolicy:
            loadBalancer:
              consistentHash:
                httpHeaderName: x-user
                maglev: {tableSize: 65537}
        - name: v2
          labels: {version: v2, app.kubernetes.io/name: reviews}
        """
    )
    assert dr.metadata.key == "shop/reviews"
    policy = dr.traffic_policy
    assert policy is not None
    assert policy.load_balancer is not None
    assert policy.load_balancer.simple is LoadBalancerSimple.ROUND_ROBIN
    pool = policy.connection_pool
    assert pool is not None
    assert pool.tcp is not None
    assert pool.http is not None
    assert pool.tcp.max_connections == 1
    assert pool.tcp.connect_timeout == pytest.approx(0.25)
    assert pool.tcp.idle_timeout == 0.0  # 0s disables the tcp idle timeout; istiod allows it
    assert pool.http.http1_max_pending_requests == 1
    assert pool.http.max_retries == 0  # 0 means unset: Istio keeps 2^32-1
    assert pool.http.idle_timeout == pytest.approx(30.0)
    assert pool.http.h2_upgrade_policy == "DO_NOT_UPGRADE"
    outlier = policy.outlier_detection
    assert outlier is not None
    assert (outlier.consecutive_5xx_errors, outlier.consecutive_gateway_errors) == (1, 2)
    assert outlier.base_ejection_time == pytest.approx(180.0)
    assert (outlier.max_ejection_percent, outlier.min_health_percent) == (100, 0)
    (port_policy,) = policy.port_level_settings
    assert port_policy.port.number == 9080
    assert port_policy.load_balancer is not None
    assert port_policy.load_balancer.consistent_hash is not None
    assert port_policy.load_balancer.consistent_hash.http_cookie_name == "user"
    v1, v2 = dr.subsets
    assert v1.traffic_policy is not None
    assert v1.traffic_policy.load_balancer is not None
    hashing = v1.traffic_policy.load_balancer.consistent_hash
    assert hashing is not None
    assert (hashing.http_header_name, hashing.maglev_table_size) == ("x-user", 65537)
    assert v2.labels == {"version": "v2", "app.kubernetes.io/name": "reviews"}


def test_gateway() -> None:
    (gw,) = load_text(
        textwrap.dedent(
            """\
            apiVersion: networking.istio.io/v1alpha3
            kind: Gateway
            metadata: {name: gw}
            spec:
              selector: {istio: ingressgateway}
              servers:
              - port: {number: 8080, name: http, protocol: HTTP}
                hosts: ["*", "shop/reviews.example.com"]
              - port: {number: 8443, name: https, protocol: HTTPS}
                hosts: ["*.example.com"]
                tls: {mode: SIMPLE, credentialName: cert}
            """
        )
    )
    assert isinstance(gw, Gateway)
    assert gw.selector == {"istio": "ingressgateway"}
    assert [(s.port.number, s.port.protocol, s.port.name) for s in gw.servers] == [
        (8080, "HTTP", "http"),
        (8443, "HTTPS", "https"),
    ]
    assert gw.servers[0].hosts == ("*", "shop/reviews.example.com")


LIST_YAML = """\
apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: a}
  spec: {host: a}
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: b}
  spec: {host: b}
---
apiVersion: networking.istio.io/v1
kind: VirtualServiceList
items:
- metadata: {name: c, namespace: other}
  spec:
    hosts: [c]
    http: [{route: [{destination: {host: c}}]}]
"""


def test_list_kinds_multi_doc_and_empty_documents() -> None:
    resources = load_text("---\n" + LIST_YAML + "---\n---\n", "list.yaml")
    assert [(r.kind, r.metadata.key) for r in resources] == [
        ("DestinationRule", "default/a"),
        ("DestinationRule", "default/b"),
        ("VirtualService", "other/c"),
    ]
    assert all(r.source == "list.yaml" for r in resources)


def test_raw_source_and_dump() -> None:
    doc = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "x", "labels": {"app.kubernetes.io/managed-by": "meshchaos"}},
        "spec": {"host": "x", "unknownField": 1},  # unknown fields are ignored
    }
    resource = parse_resource(doc, "mem")
    assert resource.raw is doc
    assert resource.source == "mem"
    assert resource.metadata.labels == {"app.kubernetes.io/managed-by": "meshchaos"}
    dumped = dump(resource)
    assert dumped == doc
    dumped["spec"]["host"] = "changed"
    assert resource.raw["spec"]["host"] == "x"


def test_load_files_is_all_or_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(LIST_YAML)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: bad}\nspec: {host: ''}\n"
    )
    assert len(load_files([good])) == 3
    assert len(load_file(good)) == 3
    with pytest.raises(ConfigInvalid) as info:
        load_files([good, bad, tmp_path / "missing.yaml"])
    assert info.value.problems == [
        f"{bad}: DestinationRule default/bad: spec.host: empty domain name not allowed",
        f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory",
    ]


def test_invalid_yaml_is_a_problem_not_a_traceback() -> None:
    with pytest.raises(ConfigInvalid) as info:
        load_text("kind: [unclosed", "broken.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("broken.yaml: invalid YAML:")


def test_parse_documents_skips_none() -> None:
    docs = [
        None,
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "g"},
            "spec": {
                "servers": [
                    {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
                ]
            },
        },
    ]
    (gw,) = parse_documents(docs, "docs")
    assert isinstance(gw, Gateway)


def test_parse_resource_rejects_list() -> None:
    with pytest.raises(ConfigInvalid, match="unsupported kind List"):
        parse_resource({"apiVersion": "v1", "kind": "List", "items": []}, "x")


def test_tcp_only_virtual_service_is_accepted_but_flagged() -> None:
    (vs,) = load_text(
        textwrap.dedent(
            """\
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: mongo}
            spec:
              hosts: [mongo.prod.svc.cluster.local]
              tcp:
              - match: [{port: 27017}]
                route: [{destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}}]
            """
        )
    )
    assert isinstance(vs, VirtualService)
    assert vs.has_tcp_or_tls
    assert vs.http == ()


def test_public_api_is_complete() -> None:
    import meshchaos.istio as api

    for name in api.__all__:
        assert hasattr(api, name), name
    assert {"load_text", "load_file", "load_files", "ConfigInvalid", "dump"} <= set(api.__all__)
    assert api.ConfigInvalid is ConfigInvalid
