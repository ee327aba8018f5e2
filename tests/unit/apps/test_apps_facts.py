"""Bookinfo's facts are written once (meshchaos.apps.facts) and everything else reads them."""

from __future__ import annotations

from meshchaos.apps import catalog, facts, productpage, ratings, reviews
from meshchaos.oracle import BOOKINFO


def _edge(caller: str, version: str, callee: str) -> tuple[float, int, str]:
    edge = BOOKINFO.edge(caller, version, callee)
    assert edge is not None
    return edge.timeout, edge.attempts, edge.on_failure


def test_call_edges_are_docs_bookinfo() -> None:
    # docs/BOOKINFO.md §1 "Downstream calls" and §3.
    assert _edge("productpage", "v1", "reviews") == (3.0, 2, "reviews-error")
    assert _edge("productpage", "v1", "details") == (3.0, 1, "details-error")
    assert _edge("reviews", "v2", "ratings") == (10.0, 1, "ratings-unavailable")
    assert _edge("reviews", "v3", "ratings") == (2.5, 1, "ratings-unavailable")
    assert BOOKINFO.edge("reviews", "v1", "ratings") is None


def test_apps_constants_come_from_the_facts() -> None:
    assert productpage.CLIENT_TIMEOUT_S == facts.PRODUCTPAGE_TIMEOUT_S
    assert productpage.REVIEWS_ATTEMPTS == facts.PRODUCTPAGE_REVIEWS_ATTEMPTS
    for version in ("v2", "v3"):
        env = facts.REVIEWS.version(version).env
        assert BOOKINFO.edge("reviews", version, "ratings") is not None
        assert _edge("reviews", version, "ratings")[0] == reviews.ratings_timeout(env["STAR_COLOR"])
    assert ratings.DELAY_S == facts.RATINGS_DELAY_S


def test_oracle_and_apps_propagate_the_same_headers() -> None:
    pp = BOOKINFO.services["productpage"].versions["v1"]
    assert pp.propagate == frozenset(facts.PROPAGATED_HEADERS) - {"end-user"}
    assert pp.sets_end_user
    v2 = BOOKINFO.services["reviews"].versions["v2"]
    assert v2.propagate == frozenset(facts.PROPAGATED_HEADERS)
    # productpage copies all but B3 (re-emitted) and end-user (from the session).
    copied = set(productpage._COPIED)
    assert copied == {h for h in pp.propagate if not h.startswith("x-b3-")}


def test_local_workloads_and_oracle_instances_agree() -> None:
    local = {w.name: w for w in catalog.DEFAULT_WORKLOADS if w.service}
    for name, count in BOOKINFO.instances.items():
        if name in local:
            assert local[name].replicas == count, name
        else:  # known to Istio's subsets, not deployed: no instance
            assert count == 0, name
    assert set(local) <= set(BOOKINFO.instances)
    for w in local.values():
        assert BOOKINFO.services[w.service].port == w.port


def test_gateway_and_client_are_one_fact() -> None:
    assert BOOKINFO.sources["gateway"] is facts.INGRESS_GATEWAY
    assert BOOKINFO.sources["client"] is facts.CLIENT
    assert catalog.find(facts.CLIENT.name).labels == facts.CLIENT.labels
