"""A gallery of resources istiod's webhook rejects, each with the exact problem we report."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshchaos.errors import ConfigInvalid
from meshchaos.istio import load_text, parse_documents

API = "networking.istio.io/v1"
DEST = {"destination": {"host": "reviews", "subset": "v1"}}


def vs(*http: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A VirtualService named ``reviews`` for host ``reviews`` with the given http routes."""
    body: dict[str, Any] = {"hosts": ["reviews"], "http": list(http)}
    body.update(spec)
    return {
        "apiVersion": API,
        "kind": "VirtualService",
        "metadata": {"name": "reviews"},
        "spec": body,
    }


def route(**fields: Any) -> dict[str, Any]:
    """An http route to reviews v1, with ``fields`` added or replaced."""
    out: dict[str, Any] = {"route": [copy.deepcopy(DEST)]}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def dr(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"host": "reviews"}
    body.update(spec)
    return {
        "apiVersion": API,
        "kind": "DestinationRule",
        "metadata": {"name": "reviews"},
        "spec": body,
    }


def pool(**settings: Any) -> dict[str, Any]:
    return dr(trafficPolicy={"connectionPool": settings})


def outlier(**settings: Any) -> dict[str, Any]:
    return dr(trafficPolicy={"outlierDetection": settings})


def gw(*servers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": list(servers)},
    }


HTTP_SERVER = {"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}


def server(**fields: Any) -> dict[str, Any]:
    out = copy.deepcopy(HTTP_SERVER)
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def fault(**parts: Any) -> dict[str, Any]:
    return route(fault=parts)


def abort(**fields: Any) -> dict[str, Any]:
    return fault(abort={"percentage": {"value": 50}, **fields})


def retries(**fields: Any) -> dict[str, Any]:
    return route(retries=fields)


def request_headers(**ops: Any) -> dict[str, Any]:
    return route(headers={"request": ops})


def match(**fields: Any) -> dict[str, Any]:
    return route(match=[fields])


VS = "VirtualService default/reviews"
DR = "DestinationRule default/reviews"
GW = "Gateway default/gw"

GALLERY = [
    # --- durations (ValidateDuration: >= 1ms, whole milliseconds) ---
    pytest.param(
        vs(route(timeout="0s")), VS, "spec.http[0].timeout: must be >= 1ms", id="timeout-0s"
    ),
    pytest.param(
        vs(route(timeout="1.5ms")),
        VS,
        "spec.http[0].timeout: must be a whole number of milliseconds",
        id="timeout-sub-millisecond",
    ),
    pytest.param(
        vs(route(timeout="abc")),
        VS,
        'spec.http[0].timeout: invalid duration "abc"',
        id="timeout-garbage",
    ),
    pytest.param(
        vs(route(timeout=10)),
        VS,
        "spec.http[0].timeout: invalid duration 10",
        id="timeout-bare-number",
    ),
    pytest.param(
        vs(retries(attempts=2, perTryTimeout="500us")),
        VS,
        "spec.http[0].retries.perTryTimeout: must be >= 1ms",
        id="per-try-timeout-500us",
    ),
    pytest.param(
        vs(retries(attempts=2, backoff="0s")),
        VS,
        "spec.http[0].retries.backoff: must be >= 1ms",
        id="backoff-0s",
    ),
    pytest.param(
        vs(fault(delay={"fixedDelay": "100us", "percentage": {"value": 10}})),
        VS,
        "spec.http[0].fault.delay.fixedDelay: must be >= 1ms",
        id="fixed-delay-100us",
    ),
    pytest.param(
        pool(tcp={"connectTimeout": "0s"}),
        DR,
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout: must be >= 1ms",
        id="connect-timeout-0s",
    ),
    pytest.param(
        pool(http={"idleTimeout": "0.5ms"}),
        DR,
        "spec.trafficPolicy.connectionPool.http.idleTimeout: must be >= 1ms",
        id="http-idle-timeout-half-ms",
    ),
    pytest.param(
        pool(tcp={"maxConnectionDuration": "1.0005s"}),
        DR,
        "spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration: "
        "must be a whole number of milliseconds",
        id="max-connection-duration-fraction",
    ),
    pytest.param(
        outlier(interval="1x"),
        DR,
        'spec.trafficPolicy.outlierDetection.interval: invalid duration "1x"',
        id="interval-bad-unit",
    ),
    pytest.param(
        outlier(baseEjectionTime="0s"),
        DR,
        "spec.trafficPolicy.outlierDetection.baseEjectionTime: must be >= 1ms",
        id="base-ejection-0s",
    ),
    # --- weights ---
    pytest.param(
        vs({"route": [{**DEST, "weight": 10}, {**DEST, "weight": -1}]}),
        VS,
        "spec.http[0].route[1].weight: must be >= 0",
        id="negative-weight",
    ),
    pytest.param(
        vs({"route": [DEST, {"destination": {"host": "reviews", "subset": "v2"}}]}),
        VS,
        "spec.http[0].route: total destination weight = 0",
        id="all-zero-weights",
    ),
    pytest.param(
        vs({"route": [{**DEST, "weight": "ten"}]}),
        VS,
        'spec.http[0].route[0].weight: must be an integer, not string "ten"',
        id="weight-wrong-type",
    ),
    # --- percentages ---
    pytest.param(
        vs(abort(httpStatus=503, percentage={"value": 101})),
        VS,
        "spec.http[0].fault.abort.percentage.value: percentage 101 is neither 0.0, nor in range",
        id="abort-percentage-101",
    ),
    pytest.param(
        vs(abort(httpStatus=503, percentage={"value": 0.00001})),
        VS,
        "spec.http[0].fault.abort.percentage.value: percentage 1e-05 is neither 0.0",
        id="abort-percentage-too-small",
    ),
    pytest.param(
        vs(fault(delay={"fixedDelay": "1s", "percentage": {"value": -5}})),
        VS,
        "spec.http[0].fault.delay.percentage.value: percentage -5 is neither",
        id="delay-percentage-negative",
    ),
    pytest.param(
        vs(route(mirror={"host": "reviews", "subset": "v2"}, mirrorPercentage={"value": 150})),
        VS,
        "spec.http[0].mirrorPercentage.value: mirror percentage must be within 0-100",
        id="mirror-percentage-150",
    ),
    pytest.param(
        vs(route(mirror={"host": "reviews", "subset": "v2"}, mirrorPercent=101)),
        VS,
        "spec.http[0].mirrorPercent: mirror_percent must have a max value of 100",
        id="mirror-percent-101",
    ),
    pytest.param(
        outlier(maxEjectionPercent=101),
        DR,
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 101 is not in range",
        id="max-ejection-101",
    ),
    pytest.param(
        outlier(minHealthPercent=-1),
        DR,
        "spec.trafficPolicy.outlierDetection.minHealthPercent: percentage -1 is not in range",
        id="min-health-negative",
    ),
    # --- fault ---
    pytest.param(
        vs(route(fault={})),
        VS,
        "spec.http[0].fault: HTTP fault injection must have an abort and/or a delay",
        id="fault-empty",
    ),
    pytest.param(
        vs(abort(httpStatus=199)),
        VS,
        "spec.http[0].fault.abort.httpStatus: HTTP status 199 is not in range 200-599",
        id="abort-status-199",
    ),
    pytest.param(
        vs(abort(httpStatus=600)),
        VS,
        "spec.http[0].fault.abort.httpStatus: Envoy rejects 600",
        id="abort-status-600-meshchaos-addition",
    ),
    pytest.param(
        vs(abort(grpcStatus="UNAVAILABLEX")),
        VS,
        'spec.http[0].fault.abort.grpcStatus: gRPC status "UNAVAILABLEX" is not supported',
        id="abort-grpc-unknown",
    ),
    pytest.param(
        vs(abort(http2Error="REFUSED_STREAM")),
        VS,
        "spec.http[0].fault.abort.http2Error: HTTP/2 abort fault injection not supported yet",
        id="abort-http2-error",
    ),
    pytest.param(
        vs(fault(delay={"exponentialDelay": "1s", "percentage": {"value": 10}})),
        VS,
        "spec.http[0].fault.delay.exponentialDelay: exponentialDelay not supported yet",
        id="exponential-delay",
    ),
    # --- retries ---
    pytest.param(
        vs(retries(attempts=-1)),
        VS,
        "spec.http[0].retries.attempts: must be >= 0",
        id="attempts-negative",
    ),
    pytest.param(
        vs(retries(attempts=0, perTryTimeout="1s")),
        VS,
        "spec.http[0].retries: http retry policy configured when attempts are set to 0",
        id="attempts-0-with-per-try-timeout",
    ),
    pytest.param(
        vs(retries(attempts=0, retryRemoteLocalities=False)),
        VS,
        "spec.http[0].retries: http retry policy configured when attempts are set to 0",
        id="attempts-0-with-remote-localities",
    ),
    pytest.param(
        vs(retries(attempts=2, retryOn="5xx, 503")),
        VS,
        'spec.http[0].retries.retryOn: " 503" is not a valid retryOn policy',
        id="retry-on-untrimmed",
    ),
    pytest.param(
        vs(retries(attempts=2, retryOn="5xx,bogus")),
        VS,
        'spec.http[0].retries.retryOn: "bogus" is not a valid retryOn policy',
        id="retry-on-unknown-policy",
    ),
    pytest.param(
        vs(retries(attempts=2, retryOn="599")),
        VS,
        'spec.http[0].retries.retryOn: "599" is not a valid retryOn policy',
        id="retry-on-unknown-status",
    ),
    # --- VirtualService hosts and structure ---
    pytest.param(
        vs(route(), hosts=None),
        VS,
        "spec.hosts: at least one host is required",
        id="hosts-missing",
    ),
    pytest.param(
        vs(route(), hosts=["bad_host!"]),
        VS,
        'spec.hosts[0]: domain name "bad_host!" invalid',
        id="host-invalid",
    ),
    pytest.param(
        vs(route(), hosts=["*"]),
        VS,
        "spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh",
        id="star-host-mesh",
    ),
    pytest.param(
        vs(route(), hosts=["*"], gateways=["mesh", "bookinfo-gateway"]),
        VS,
        "spec.hosts[0]: wildcard host * is not allowed",
        id="star-host-gateways-include-mesh",
    ),
    pytest.param(
        vs(route(), hosts=["reviews", "reviews"]),
        VS,
        "spec.hosts: duplicate hosts in virtual service: reviews & reviews",
        id="duplicate-hosts",
    ),
    pytest.param(
        vs(route(), hosts=["*.example.com", "a.example.com"]),
        VS,
        "spec.hosts: duplicate hosts in virtual service: *.example.com & a.example.com",
        id="wildcard-overlapping-hosts",
    ),
    pytest.param(vs(), VS, "spec: http, tcp or tls must be provided", id="no-http-tcp-tls"),
    pytest.param(
        vs({"timeout": "1s"}),
        VS,
        "spec.http[0]: HTTP route, redirect or directResponse is required",
        id="no-action",
    ),
    pytest.param(
        vs(route(redirect={"uri": "/new"})),
        VS,
        "spec.http[0]: HTTP route cannot contain both route and redirect",
        id="route-and-redirect",
    ),
    pytest.param(
        vs({"redirect": {"uri": "/x"}, "fault": {"abort": {"httpStatus": 500}}}),
        VS,
        "spec.http[0]: HTTP route cannot contain both fault and redirect",
        id="fault-and-redirect",
    ),
    pytest.param(
        vs({"directResponse": {"status": 200}, "fault": {"abort": {"httpStatus": 500}}}),
        VS,
        "spec.http[0]: HTTP route cannot contain both fault and directResponse",
        id="fault-and-direct-response",
    ),
    pytest.param(
        vs(route(mirror={"host": "a"}, mirrors=[{"destination": {"host": "b"}}])),
        VS,
        "spec.http[0]: HTTP route cannot contain both mirror and mirrors",
        id="mirror-and-mirrors",
    ),
    pytest.param(
        vs({"route": [{"destination": {"host": ""}}]}),
        VS,
        "spec.http[0].route[0].destination.host: empty domain name not allowed",
        id="destination-host-empty",
    ),
    pytest.param(
        vs({"route": [{"destination": {"host": "*"}}]}),
        VS,
        "spec.http[0].route[0].destination.host: invalid destination host *",
        id="destination-host-star",
    ),
    pytest.param(
        vs({"route": [{"destination": {"host": "reviews", "subset": "v_1"}}]}),
        VS,
        "spec.http[0].route[0].destination.subset: subset name is invalid: v_1",
        id="subset-not-dns-label",
    ),
    pytest.param(
        vs({"route": [{"destination": {"host": "reviews", "port": {"number": 70000}}}]}),
        VS,
        "spec.http[0].route[0].destination.port.number: port number 70000 must be in the range",
        id="destination-port-out-of-range",
    ),
    # --- matches ---
    pytest.param(
        vs(match(uri={"prefix": ""})),
        VS,
        "spec.http[0].match[0].uri.prefix: prefix string match should not be empty",
        id="empty-prefix",
    ),
    pytest.param(
        vs(match(headers={"end-user": {"regex": ""}})),
        VS,
        "spec.http[0].match[0].headers.end-user.regex: regex string match should not be empty",
        id="empty-regex",
    ),
    pytest.param(
        vs(match(uri={"regex": "(("})),
        VS,
        'spec.http[0].match[0].uri.regex: invalid regex "(("',
        id="regex-invalid",
    ),
    pytest.param(
        vs(match(uri={"regex": "a" * 1025})),
        VS,
        "spec.http[0].match[0].uri.regex: regex is too large, max length allowed is 1024",
        id="regex-too-long",
    ),
    pytest.param(
        vs(match(uri={"regex": "/(?!admin).*"})),
        VS,
        'spec.http[0].match[0].uri.regex: invalid regex "/(?!admin).*": uses syntax RE2',
        id="regex-lookahead-not-re2",
    ),
    pytest.param(
        vs(match(headers={"x foo": {"exact": "1"}})),
        VS,
        'spec.http[0].match[0].headers.x foo: header name "x foo" is not a valid header name',
        id="header-name-with-space",
    ),
    pytest.param(
        vs(match(headers={"end-user": None})),
        VS,
        "spec.http[0].match[0].headers.end-user: header match end-user cannot be null",
        id="header-match-null",
    ),
    pytest.param(
        vs(match(headers={"@request.auth.claims.group": {"exact": "admin"}})),
        VS,
        "JWT claim based routing (key: @request.auth.claims.group) is only supported for gateway",
        id="jwt-claim-on-mesh",
    ),
    # --- header operations ---
    pytest.param(
        vs(route(rewrite={"authority": "a"}, headers={"request": {"set": {":authority": "b"}}})),
        VS,
        "spec.http[0].headers.request: authority header cannot be set multiple times",
        id="authority-set-twice",
    ),
    pytest.param(
        vs(route(headers={"response": {"set": {"Host": "x"}}})),
        VS,
        'spec.http[0].headers.response.set: invalid header "Host": cannot set Host header',
        id="response-sets-host",
    ),
    pytest.param(
        vs(request_headers(remove=["host"])),
        VS,
        'spec.http[0].headers.request.remove[0]: invalid header "host": cannot set Host header',
        id="request-removes-host",
    ),
    pytest.param(
        vs(request_headers(set={":path": "/x"})),
        VS,
        'spec.http[0].headers.request.set: invalid header ":path": header cannot have ":" prefix',
        id="request-sets-pseudo-header",
    ),
    # --- DestinationRule ---
    pytest.param(dr(host=""), DR, "spec.host: empty domain name not allowed", id="dr-empty-host"),
    pytest.param(
        dr(subsets=[{"name": "v1"}, {"name": "v1"}]),
        DR,
        "spec.subsets[1].name: duplicate subset names: v1",
        id="dr-duplicate-subsets",
    ),
    pytest.param(
        dr(subsets=[{"name": "V.1"}]),
        DR,
        "spec.subsets[0].name: subset name is invalid: V.1",
        id="dr-subset-name-invalid",
    ),
    pytest.param(
        dr(subsets=[{"name": "v1", "labels": {"version": "v 1"}}]),
        DR,
        'spec.subsets[0].labels: invalid label value "v 1" for key "version"',
        id="dr-subset-label-invalid",
    ),
    pytest.param(
        dr(trafficPolicy={}),
        DR,
        "spec.trafficPolicy: traffic policy must have at least one field",
        id="dr-empty-traffic-policy",
    ),
    pytest.param(
        dr(subsets=[{"name": "v1", "trafficPolicy": {}}]),
        DR,
        "spec.subsets[0].trafficPolicy: traffic policy must have at least one field",
        id="dr-subset-empty-traffic-policy",
    ),
    pytest.param(
        pool(),
        DR,
        "spec.trafficPolicy.connectionPool: connection pool must have at least one field",
        id="dr-empty-connection-pool",
    ),
    pytest.param(
        pool(tcp={"maxConnections": -1}),
        DR,
        "spec.trafficPolicy.connectionPool.tcp.maxConnections: must be >= 0",
        id="dr-negative-max-connections",
    ),
    pytest.param(
        pool(http={"http1MaxPendingRequests": -3}),
        DR,
        "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests: must be >= 0",
        id="dr-negative-pending",
    ),
    pytest.param(
        dr(
            trafficPolicy={
                "portLevelSettings": [{"connectionPool": {"tcp": {"maxConnections": 1}}}]
            }
        ),
        DR,
        "spec.trafficPolicy.portLevelSettings[0].port: portTrafficPolicy must have valid port",
        id="dr-port-level-without-port",
    ),
    pytest.param(
        dr(trafficPolicy={"portLevelSettings": [{"port": {"number": 9080}}]}),
        DR,
        "spec.trafficPolicy.portLevelSettings[0]: port traffic policy must have at least one field",
        id="dr-port-level-without-settings",
    ),
    pytest.param(
        pool(http={"h2UpgradePolicy": "UPGRADE", "useClientProtocol": True}),
        DR,
        "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
        id="dr-client-protocol-with-upgrade",
    ),
    pytest.param(
        dr(trafficPolicy={"loadBalancer": {"consistentHash": {"maglev": {"tableSize": 1000}}}}),
        DR,
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: "
        "tableSize must be a prime",
        id="dr-maglev-not-prime",
    ),
    pytest.param(
        outlier(consecutiveLocalOriginFailures=3),
        DR,
        "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: outlier detection "
        "consecutive local origin failures is specified, but split external local origin errors",
        id="dr-local-origin-without-split",
    ),
    pytest.param(
        dr(trafficPolicy={"loadBalancer": {"simple": "FASTEST"}}),
        DR,
        'spec.trafficPolicy.loadBalancer.simple: unknown load balancer "FASTEST"',
        id="dr-unknown-lb",
    ),
    # --- Gateway ---
    pytest.param(
        gw(), GW, "spec.servers: gateway must have at least one server", id="gw-no-servers"
    ),
    pytest.param(
        gw(server(port={"name": "http", "protocol": "HTTP"})),
        GW,
        "spec.servers[0].port.number: required",
        id="gw-port-number-missing",
    ),
    pytest.param(
        gw(server(port={"number": 70000, "name": "http", "protocol": "HTTP"})),
        GW,
        "spec.servers[0].port.number: port number 70000 must be in the range 1..65535",
        id="gw-port-out-of-range",
    ),
    pytest.param(
        gw(server(hosts=None)),
        GW,
        "spec.servers[0].hosts: server config must contain at least one host",
        id="gw-no-hosts",
    ),
    pytest.param(
        gw(server(port={"number": 443, "name": "https", "protocol": "HTTPS"})),
        GW,
        "spec.servers[0]: server must have TLS settings for HTTPS/TLS protocols",
        id="gw-https-without-tls",
    ),
    # --- envelope ---
    pytest.param(
        {**dr(), "kind": "ServiceEntry"},
        "ServiceEntry default/reviews",
        "kind: unsupported kind ServiceEntry",
        id="unsupported-kind",
    ),
    pytest.param(
        {**dr(), "apiVersion": "networking.example.io/v1"},
        DR,
        "apiVersion: unsupported apiVersion networking.example.io/v1",
        id="unsupported-api-group",
    ),
    pytest.param(
        {**dr(), "metadata": {"namespace": "shop"}},
        "DestinationRule (document 1)",
        "metadata.name: required",
        id="missing-name",
    ),
    pytest.param(
        {**dr(), "spec": ["host"]}, DR, "spec: must be a mapping", id="spec-not-a-mapping"
    ),
]


@pytest.mark.parametrize(("doc", "resource", "expected"), GALLERY)
def test_gallery_reports_exactly_the_problem(
    doc: dict[str, Any], resource: str, expected: str
) -> None:
    with pytest.raises(ConfigInvalid) as info:
        parse_documents([doc], "gallery.yaml")
    problems = info.value.problems
    prefix = f"gallery.yaml: {resource}: "
    assert len(problems) == 1, problems
    assert problems[0].startswith(prefix), problems
    assert expected in problems[0][len(prefix) :], problems


def test_gallery_is_large_enough() -> None:
    assert len(GALLERY) >= 35


def test_every_problem_in_a_document_is_reported() -> None:
    text = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - timeout: 0s
    retries: {attempts: -2}
    route:
    - destination: {host: reviews, subset: v1}
      weight: -5
"""
    with pytest.raises(ConfigInvalid) as info:
        load_text(text, "three.yaml")
    prefix = "three.yaml: VirtualService default/reviews: spec.http[0]."
    assert sorted(info.value.problems) == sorted(
        [
            f"{prefix}timeout: must be >= 1ms (got 0ms)",
            f"{prefix}retries.attempts: must be >= 0",
            f"{prefix}route[0].weight: must be >= 0",
        ]
    )
    assert str(info.value).startswith("3 problems found, nothing applied:")


def test_problems_across_documents_are_all_reported_and_nothing_returned() -> None:
    good = vs(route())
    docs = [good, dr(host=""), gw()]
    with pytest.raises(ConfigInvalid) as info:
        parse_documents(docs, "many.yaml")
    assert [p.split(": ")[1] for p in info.value.problems] == [DR, GW]


def test_600_is_marked_as_a_meshchaos_addition() -> None:
    with pytest.raises(ConfigInvalid) as info:
        parse_documents([vs(abort(httpStatus=600))], "x")
    (problem,) = info.value.problems
    assert "istiod accepts it" in problem
    assert "meshchaos" in problem
