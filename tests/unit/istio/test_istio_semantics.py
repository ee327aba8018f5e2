"""The shared Istio semantics (meshchaos.istio.cluster_policy, route_policy and hosts), one rule
each, as docs/ISTIO_SEMANTICS.md states it."""

from __future__ import annotations

import pytest

from meshchaos.istio import (
    Destination,
    DestinationRule,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    PortSelector,
    load_text,
)
from meshchaos.istio.cluster_policy import (
    MAX_UINT32,
    CircuitBreakerLimits,
    circuit_breaker_limits,
    effective_traffic_policy,
    ejection_settings,
    inbound_connection_pool,
)
from meshchaos.istio.hosts import destination_rule_for, host_matches, resolve_host
from meshchaos.istio.route_policy import (
    DEFAULT_RETRY_ON,
    Fraction,
    destination_port,
    effective_fault,
    effective_retry_policy,
    mirror_fraction,
    percent_fraction,
    route_destinations,
    route_timeout,
    source_selects,
)

REVIEWS = "reviews.default.svc.cluster.local"

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
      connectionPool:
        tcp: {maxConnections: 5}
  - name: v3
    labels: {version: v3}
"""


def _dr(text: str) -> DestinationRule:
    (dr,) = load_text(text)
    assert isinstance(dr, DestinationRule)
    return dr


def _vs_route_parts(text: str) -> tuple[HTTPRetry | None, HTTPFaultInjection | None]:
    doc = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
        "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
        + text
    )
    (vs,) = load_text(doc)
    http = vs.http[0]  # type: ignore[union-attr]
    return http.retries, http.fault


# ------------------------------------------------------------------ traffic policy, §7
def test_subset_port_entry_replaces_the_top_level_pool_and_outlier() -> None:
    dr = _dr(PORT_LEVEL_SUBSET)
    v1 = effective_traffic_policy(dr, "v1", 9080)
    assert v1.connection_pool is None
    assert v1.outlier_detection is None
    assert v1.load_balancer is not None
    assert v1.load_balancer.simple == "ROUND_ROBIN"
    assert circuit_breaker_limits(v1.connection_pool) == CircuitBreakerLimits()


def test_subset_port_entry_for_another_port_changes_nothing() -> None:
    dr = _dr(PORT_LEVEL_SUBSET)
    other = effective_traffic_policy(dr, "v1", 9090)
    assert other.connection_pool == dr.traffic_policy.connection_pool  # type: ignore[union-attr]


def test_subset_fields_override_one_by_one() -> None:
    dr = _dr(PORT_LEVEL_SUBSET)
    v2 = effective_traffic_policy(dr, "v2", 9080)
    assert circuit_breaker_limits(v2.connection_pool).max_connections == 5
    # Pending came with the top-level pool, which the subset pool replaced as a whole.
    assert circuit_breaker_limits(v2.connection_pool).max_pending_requests == MAX_UINT32
    assert v2.outlier_detection == dr.traffic_policy.outlier_detection  # type: ignore[union-attr]
    v3 = effective_traffic_policy(dr, "v3", 9080)
    assert v3 == effective_traffic_policy(dr, None, 9080)
    assert circuit_breaker_limits(v3.connection_pool) == CircuitBreakerLimits(1, 1)


def test_top_level_port_entry_replaces_everything_and_reaches_inbound() -> None:
    text = PORT_LEVEL_SUBSET.replace(
        "    outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 100}\n",
        "    outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 100}\n"
        "    portLevelSettings:\n    - port: {number: 9080}\n"
        "      connectionPool: {http: {http2MaxRequests: 7}}\n",
    )
    dr = _dr(text)
    top = effective_traffic_policy(dr, None, 9080)
    assert top.outlier_detection is None
    assert circuit_breaker_limits(top.connection_pool) == CircuitBreakerLimits(max_requests=7)
    assert inbound_connection_pool(dr, 9080) == top.connection_pool
    assert inbound_connection_pool(dr, 9090) == dr.traffic_policy.connection_pool  # type: ignore[union-attr]
    assert inbound_connection_pool(None, 9080) is None


def test_no_rule_and_undeclared_subset() -> None:
    assert effective_traffic_policy(None, "v1", 9080).connection_pool is None
    dr = _dr(PORT_LEVEL_SUBSET)
    assert effective_traffic_policy(dr, "nope", 9080) == effective_traffic_policy(dr, None, 9080)


def test_zero_pool_values_are_unset() -> None:
    dr = _dr(PORT_LEVEL_SUBSET.replace("maxConnections: 1}", "maxConnections: 0}"))
    limits = circuit_breaker_limits(effective_traffic_policy(dr, None, 9080).connection_pool)
    assert limits.max_connections == MAX_UINT32
    assert limits.max_pending_requests == 1


def test_ejection_settings_take_envoy_defaults() -> None:
    dr = _dr(
        PORT_LEVEL_SUBSET.replace(
            "consecutive5xxErrors: 1, maxEjectionPercent: 100", "minHealthPercent: 0"
        )
    )
    od = dr.traffic_policy.outlier_detection  # type: ignore[union-attr]
    assert od is not None
    got = ejection_settings(od)
    assert (got.consecutive_5xx, got.consecutive_gateway_errors) == (5, 0)
    assert (got.interval, got.base_ejection_time, got.max_ejection_percent) == (10.0, 30.0, 10)
    assert got.min_health_percent == 0
    zero = _dr(PORT_LEVEL_SUBSET.replace("maxEjectionPercent: 100", "maxEjectionPercent: 0"))
    od0 = zero.traffic_policy.outlier_detection  # type: ignore[union-attr]
    assert od0 is not None
    assert ejection_settings(od0).max_ejection_percent == 10


# ------------------------------------------------------------------------- retries, §4
def test_default_retry_policy() -> None:
    policy = effective_retry_policy(None)
    assert policy is not None
    assert policy.num_retries == 2
    assert policy.retry_on == DEFAULT_RETRY_ON
    assert policy.retriable_status_codes == ()
    assert policy.previous_hosts
    assert policy.host_selection_retry_max_attempts == 5
    assert policy.per_try_timeout is None
    assert policy.backoff is None
    hashed = effective_retry_policy(None, consistent_hash=True)
    assert hashed is not None
    assert not hashed.previous_hosts


def test_attempts_zero_disables_retries() -> None:
    retries, _ = _vs_route_parts("    retries: {attempts: 0}\n")
    assert effective_retry_policy(retries) is None


@pytest.mark.parametrize(
    ("retry_on", "expected", "codes"),
    [
        ("5xx,503", "5xx,retriable-status-codes", (503,)),
        ("503", ",retriable-status-codes", (503,)),
        (
            "gateway-error,retriable-status-codes,409",
            "gateway-error,retriable-status-codes",
            (409,),
        ),
        ("connect-failure", "connect-failure", ()),
    ],
)
def test_retry_on_status_codes(retry_on: str, expected: str, codes: tuple[int, ...]) -> None:
    retries, _ = _vs_route_parts(
        f"    retries: {{attempts: 3, perTryTimeout: 200ms, retryOn: '{retry_on}'}}\n"
    )
    policy = effective_retry_policy(retries)
    assert policy is not None
    assert (policy.num_retries, policy.retry_on, policy.retriable_status_codes) == (
        3,
        expected,
        codes,
    )
    assert policy.per_try_timeout == 0.2
    assert policy.conditions == frozenset(t for t in expected.split(",") if t)


def test_retry_host_predicate_and_backoff() -> None:
    retries, _ = _vs_route_parts(
        "    retries: {attempts: 1, retryIgnorePreviousHosts: false, backoff: 50ms}\n"
    )
    policy = effective_retry_policy(retries)
    assert policy is not None
    assert not policy.previous_hosts
    assert policy.backoff == 0.05
    assert policy.retry_on == DEFAULT_RETRY_ON
    keep, _ = _vs_route_parts("    retries: {attempts: 1, retryIgnorePreviousHosts: true}\n")
    hashed = effective_retry_policy(keep, consistent_hash=True)
    assert hashed is not None
    assert hashed.previous_hosts


def test_route_timeout_unset_is_disabled() -> None:
    assert route_timeout(None) is None


# -------------------------------------------------------------------------- faults, §5
def test_percent_mapping_truncates_like_go() -> None:
    # float64 0.57 x 10000 is 5699.999...: truncated, not rounded (a point under 0.57 %).
    assert percent_fraction(0.57) == Fraction(5699, "MILLION")
    assert percent_fraction(0.1) == Fraction(1000, "MILLION")
    assert percent_fraction(100).probability == 1.0


def test_fault_fractions() -> None:
    _, fault = _vs_route_parts(
        "    fault:\n      delay: {fixedDelay: 2s, percentage: {value: 10}}\n"
        "      abort: {httpStatus: 503, percentage: {value: 50}}\n"
    )
    got = effective_fault(fault)
    assert got is not None
    assert got.delay is not None
    assert got.abort is not None
    assert (got.delay.seconds, got.delay.fraction) == (2.0, Fraction(100000, "MILLION"))
    assert (got.abort.http_status, got.abort.fraction.probability) == (503, 0.5)


def test_fault_defaults_without_percentage() -> None:
    _, fault = _vs_route_parts(
        "    fault:\n      delay: {fixedDelay: 2s}\n      abort: {httpStatus: 503}\n"
    )
    got = effective_fault(fault)
    assert got is not None
    assert got.delay is None
    assert got.abort is not None
    assert got.abort.fraction == Fraction(0, "HUNDRED")
    _, deprecated = _vs_route_parts("    fault:\n      delay: {fixedDelay: 2s, percent: 25}\n")
    old = effective_fault(deprecated)
    assert old is not None
    assert old.delay is not None
    assert old.delay.fraction == Fraction(25, "HUNDRED")


def test_grpc_abort_and_untyped_abort() -> None:
    _, grpc = _vs_route_parts(
        "    fault:\n      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}\n"
    )
    got = effective_fault(grpc)
    assert got is not None
    assert got.abort is not None
    assert (got.abort.grpc_status, got.abort.http_status) == (14, None)
    _, bare = _vs_route_parts("    fault:\n      abort: {percentage: {value: 100}}\n")
    dropped = effective_fault(bare)
    assert dropped is not None
    assert dropped.abort is None
    assert dropped.dropped


def test_mirror_fraction() -> None:
    assert mirror_fraction(None) == Fraction(100, "HUNDRED")
    assert mirror_fraction(0) is None
    assert mirror_fraction(50) == Fraction(500000, "MILLION")


# --------------------------------------------------------------------------- hosts, §1
def test_resolve_host_expands_short_names_only() -> None:
    assert resolve_host("Reviews", "default") == REVIEWS
    assert resolve_host("reviews", "shop") == "reviews.shop.svc.cluster.local"
    assert resolve_host("reviews.default", "default") == "reviews.default"
    assert resolve_host("*", "default") == "*"
    assert resolve_host("*.default.svc.cluster.local", "x") == "*.default.svc.cluster.local"


def test_host_matches() -> None:
    assert host_matches(REVIEWS, REVIEWS)
    assert host_matches("*", REVIEWS)
    assert host_matches("*.default.svc.cluster.local", REVIEWS)
    assert not host_matches("*.shop.svc.cluster.local", REVIEWS)
    assert not host_matches("reviews.default", REVIEWS)


def test_destination_rule_for_prefers_exact_then_first() -> None:
    base = PORT_LEVEL_SUBSET
    exact = _dr(base)
    wild = _dr(base.replace("host: reviews", "host: '*.default.svc.cluster.local'"))
    later = _dr(base.replace("name: reviews", "name: later"))
    assert destination_rule_for([wild, exact, later], REVIEWS) is exact
    assert destination_rule_for([wild], REVIEWS) is wild
    assert destination_rule_for([exact], "ratings.default.svc.cluster.local") is None


# ------------------------------------------------------------------ proxy selectors, §1
def test_source_selects() -> None:
    labels = {"app": "reviews", "version": "v2"}

    def mesh(name: str) -> bool:
        return name == "mesh"

    assert source_selects(None, labels, "default", mesh)
    assert source_selects(HTTPMatchRequest(source_labels={"app": "reviews"}), labels, "x", mesh)
    assert not source_selects(HTTPMatchRequest(source_labels={"app": "ratings"}), labels, "x", mesh)
    assert source_selects(HTTPMatchRequest(source_namespace="default"), labels, "default", mesh)
    assert not source_selects(HTTPMatchRequest(source_namespace="shop"), labels, "default", mesh)
    # Match-level gateways decide alone: sourceLabels are not looked at.
    both = HTTPMatchRequest(gateways=("mesh",), source_labels={"app": "ratings"})
    assert source_selects(both, labels, "default", mesh)
    assert not source_selects(HTTPMatchRequest(gateways=("gw",)), labels, "default", mesh)


# ---------------------------------------------------------------------- destinations, §2
def _routes(text: str) -> HTTPRoute:
    doc = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
        "spec:\n  hosts: [reviews]\n  http:\n  - route:\n" + text
    )
    (vs,) = load_text(doc)
    return vs.http[0]  # type: ignore[union-attr]


def test_route_destinations_shares() -> None:
    one = _routes("    - {destination: {host: reviews, subset: v1}, weight: 30}\n")
    assert [share for _, share in route_destinations(one)] == [1.0]
    many = _routes(
        "    - {destination: {host: reviews, subset: v1}, weight: 1}\n"
        "    - {destination: {host: reviews, subset: v2}, weight: 0}\n"
        "    - {destination: {host: reviews, subset: v3}, weight: 2}\n"
    )
    got = [(d.destination.subset, share) for d, share in route_destinations(many)]
    assert got == [("v1", pytest.approx(1 / 3)), ("v3", pytest.approx(2 / 3))]


def test_destination_port() -> None:
    assert destination_port(Destination("r", port=PortSelector(9090)), (9080,), 80) == 9090
    assert destination_port(Destination("r"), (9080,), 80) == 9080
    assert destination_port(Destination("r"), (9080, 9090), 80) == 80
