"""Bookinfo predictions worked out from first principles.

See docs/BOOKINFO.md §7 and docs/ISTIO_SEMANTICS.md §5.
"""

from __future__ import annotations

import pytest
from oracle_helpers import OVER, SLACK, check, policy, total, vs

from meshchaos.oracle import BOOKINFO, RequestClass, predict

PAGE = RequestClass()
JASON = RequestClass(user="jason")

REVIEWS_JASON_V2 = vs(
    "reviews",
    """\
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
""",
)


def ratings_fault(fault: str, subset: str = "v1") -> str:
    return vs(
        "ratings",
        f"""\
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    fault: {fault}
    route: [{{destination: {{host: ratings, subset: {subset}}}}}]
  - route: [{{destination: {{host: ratings, subset: v1}}}}]
""",
    )


def test_no_policy_spreads_over_three_versions() -> None:
    p = predict([], PAGE)
    for cls in ("reviews-v1", "reviews-v2-black", "reviews-v3-red"):
        check(p, cls, 1 / 3, 0.0, OVER)
    assert total(p) == pytest.approx(1.0, abs=1e-12)


def test_all_v1() -> None:
    p = predict(
        policy(vs("reviews", "  - route: [{destination: {host: reviews, subset: v1}}]\n")), PAGE
    )
    assert p.classes() == ["reviews-v1"]
    check(p, "reviews-v1", 1.0, 0.0, OVER)


@pytest.mark.parametrize(
    ("user", "expected"),
    [("jason", "reviews-v2-black"), ("alice", "reviews-v1"), (None, "reviews-v1")],
)
def test_jason_gets_v2_others_v1(user: str | None, expected: str) -> None:
    p = predict(policy(REVIEWS_JASON_V2), RequestClass(user=user))
    check(p, expected, 1.0)
    route = "route 0 (end-user exact jason)" if user == "jason" else "route 1 (catch-all)"
    assert any(f"productpage-v1 → reviews: VS reviews {route}" in line for line in p.reasoning)


def test_ratings_delay_7s_for_jason_v2_times_out_twice() -> None:
    resources = policy(
        REVIEWS_JASON_V2
        + "---\n"
        + ratings_fault("{delay: {fixedDelay: 7s, percentage: {value: 100}}}")
    )
    p = predict(resources, JASON)
    # productpage's 3 s reviews timeout fires on both attempts: 6 s, two timers.
    check(p, "reviews-error", 1.0, 6.0 - 2 * SLACK, 6.0 + OVER)
    assert p.counters["fault.delays_injected"] == pytest.approx(2.0)
    assert any("reviews-error at ≈6.0 s" in line for line in p.reasoning)


def test_ratings_abort_500_for_jason_is_immediate() -> None:
    resources = policy(
        REVIEWS_JASON_V2
        + "---\n"
        + ratings_fault("{abort: {httpStatus: 500, percentage: {value: 100}}}")
    )
    p = predict(resources, JASON)
    check(p, "ratings-unavailable", 1.0, 0.0, OVER)
    assert p.counters["fault.aborts_injected"] == pytest.approx(1.0)


def test_ratings_delay_2s_with_reviews_timeout_half_second() -> None:
    reviews = vs(
        "reviews",
        """\
  - route: [{destination: {host: reviews, subset: v2}}]
    timeout: 0.5s
""",
    )
    ratings = vs(
        "ratings",
        """\
  - fault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}
    route: [{destination: {host: ratings, subset: v1}}]
""",
    )
    p = predict(policy(reviews + "---\n" + ratings), PAGE)
    # Envoy 504 after 0.5 s, twice (productpage retries once): ≈ 2T (BOOKINFO §7).
    check(p, "reviews-error", 1.0, 1.0 - 2 * SLACK, 1.0 + OVER)


def test_reviews_v3_ratings_delay_3s_gives_ratings_unavailable_at_2_5s() -> None:
    reviews = vs("reviews", "  - route: [{destination: {host: reviews, subset: v3}}]\n")
    ratings = vs(
        "ratings",
        """\
  - fault: {delay: {fixedDelay: 3s, percentage: {value: 100}}}
    route: [{destination: {host: ratings, subset: v1}}]
""",
    )
    p = predict(policy(reviews + "---\n" + ratings), PAGE)
    check(p, "ratings-unavailable", 1.0, 2.5 - SLACK, 2.5 + OVER)


def test_ratings_delay_below_v2_timeout_keeps_black_stars() -> None:
    reviews = vs("reviews", "  - route: [{destination: {host: reviews, subset: v2}}]\n")
    ratings = vs(
        "ratings",
        """\
  - fault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}
    route: [{destination: {host: ratings, subset: v1}}]
""",
    )
    p = predict(policy(reviews + "---\n" + ratings), PAGE)
    check(p, "reviews-v2-black", 1.0, 2.0 - SLACK, 2.0 + OVER)


def test_fifty_fifty_v1_v3() -> None:
    p = predict(
        policy(
            vs(
                "reviews",
                """\
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v3}, weight: 50}
""",
            )
        ),
        PAGE,
    )
    check(p, "reviews-v1", 0.5)
    check(p, "reviews-v3-red", 0.5)


def test_details_abort_555_is_details_error() -> None:
    p = predict(
        policy(
            vs(
                "details",
                """\
  - fault: {abort: {httpStatus: 555, percentage: {value: 100}}}
    route: [{destination: {host: details}}]
""",
            )
        ),
        RequestClass(),
    )
    for cls in ("reviews-v1", "reviews-v2-black", "reviews-v3-red"):
        assert p.share(cls) is None
    check(p, "details-error", 1.0, 0.0, OVER)


def test_details_and_reviews_abort_combine() -> None:
    resources = policy(
        vs(
            "details",
            """\
  - fault: {abort: {httpStatus: 555, percentage: {value: 50}}}
    route: [{destination: {host: details}}]
""",
        )
        + "---\n"
        + vs(
            "reviews",
            """\
  - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
""",
        )
    )
    p = predict(resources, PAGE)
    check(p, "details-and-reviews-error", 0.5)
    check(p, "reviews-error", 0.5)
    # productpage retries reviews once: two independent abort draws per page.
    assert p.counters["fault.aborts_injected"] == pytest.approx(0.5 + 2.0)


def test_unknown_subset_is_503_nc_at_that_hop() -> None:
    p = predict(
        policy(vs("reviews", "  - route: [{destination: {host: reviews, subset: v9}}]\n")), PAGE
    )
    check(p, "reviews-error", 1.0)  # productpage turns the 503 into the reviews error block
    assert any("503 NC" in line for line in p.reasoning)


def test_faulty_ratings_instances_give_independent_draws() -> None:
    topo = BOOKINFO.scaled(**{"ratings-v1": 0, "ratings-v-faulty": 1})
    reviews = vs("reviews", "  - route: [{destination: {host: reviews, subset: v2}}]\n")
    p = predict(policy(reviews), PAGE, topo)
    # 503 from the upstream: not retried by the default policy (docs/ISTIO_SEMANTICS.md §4).
    check(p, "ratings-unavailable", 0.5)
    check(p, "reviews-v2-black", 0.5)


def test_gateway_unmatched_path_is_404() -> None:
    p = predict([], RequestClass(path="/nothing"))
    check(p, "status:404", 1.0)


def test_reviews_api_through_gateway() -> None:
    p = predict(
        policy(vs("reviews", "  - route: [{destination: {host: reviews, subset: v3}}]\n")),
        RequestClass(path="/api/v1/products/0/reviews"),
    )
    check(p, "reviews-v3-red", 1.0)
