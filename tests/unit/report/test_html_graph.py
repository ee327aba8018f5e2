"""The service graph and the policy facts it and the ECDF show."""

from __future__ import annotations

import pytest

from meshchaos.report._graph import build_graph, graph_svg, health
from meshchaos.report._graph_policy import policy_facts

RATINGS_ABORT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - fault:
      abort: {httpStatus: 500, percentage: {value: 50}}
    route:
    - destination: {host: ratings, subset: v1}
"""
HTTPBIN_RETRIES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - timeout: 1s
    fault:
      delay: {fixedDelay: 1.5s, percentage: {value: 100}}
    retries: {attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}
    route:
    - destination: {host: httpbin, subset: v1}
"""
PRODUCTPAGE = {"source": "gateway", "host": "productpage", "path": "/productpage"}


def test_policy_marks_and_badges_come_from_the_policy_text() -> None:
    facts = policy_facts([{"name": "p.yaml", "text": HTTPBIN_RETRIES}])
    assert [(m.kind, m.seconds) for m in facts.marks] == [
        ("delay", 1.5),
        ("timeout", 1.0),
        ("perTryTimeout", 0.2),
    ]
    assert facts.badges["httpbin"] == [
        "FI delay 1.5 s 100%",
        "TO 1 s",
        "RT 2 x 200 ms on 5xx",
        "→ v1",
    ]


def test_an_invalid_policy_is_a_note_not_an_error() -> None:
    facts = policy_facts([{"name": "bad.yaml", "text": "kind: VirtualService\nspec: 3\n"}])
    assert facts.marks == []
    assert facts.note.startswith("policy bad.yaml not shown on the graph")


def test_the_bookinfo_hops_with_the_failing_one_red_and_labelled() -> None:
    facts = policy_facts([{"name": "r.yaml", "text": RATINGS_ABORT}])
    classes = {"reviews-v1": 100, "reviews-v2-black": 50, "ratings-unavailable": 50}
    graph = build_graph(PRODUCTPAGE, classes, facts)
    assert graph is not None
    hops = {(e.source, e.target): e for e in graph.edges}
    assert set(hops) == {
        ("istio-ingressgateway", "productpage"),
        ("productpage", "details"),
        ("productpage", "reviews"),
        ("reviews", "ratings"),
    }
    ratings = hops[("reviews", "ratings")]
    assert ratings.error_share == pytest.approx(0.25)
    assert health(ratings.error_share) == "failure"
    assert ratings.badges == ["FI abort 500 50%", "→ v1"]
    assert health(hops[("productpage", "details")].error_share) == "healthy"
    assert graph.boxes["reviews"].shares == {"v1": 0.5, "v2": 0.25, "v3": 0.0}
    svg = graph_svg(graph, "x")
    assert svg.startswith('<svg class="graph"')
    assert "FI abort 500 50%" in svg
    assert 'marker-end="url(#arrow-x-failure)"' in svg


def test_an_entry_5xx_is_blamed_on_the_first_hop() -> None:
    request = {"source": "client", "host": "httpbin", "path": "/status/503"}
    graph = build_graph(request, {"status:200": 90, "status:503": 10}, policy_facts([]))
    assert graph is not None
    (edge,) = graph.edges
    assert (edge.source, edge.target, edge.error_share) == ("client", "httpbin", 0.1)


def test_a_host_outside_the_topology_has_no_graph() -> None:
    assert build_graph({"host": "elsewhere"}, {}, policy_facts([])) is None
