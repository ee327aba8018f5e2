"""LEAST_REQUEST under unequal latency: exact shares only where the balancer is neutral.

Power of two choices over k hosts in a strict load order picks the i-th least busy with
probability (2(k - i) + 1) / k^2; for k = 3 that is 5/9, 3/9, 1/9.
"""

from __future__ import annotations

import itertools

import pytest
from oracle_helpers import DR_ALL, policy, vs

from meshchaos.istio.parse import load_text
from meshchaos.oracle import RequestClass, predict
from meshchaos.oracle._balance import calls_differ, calls_made, conditionals, orders
from meshchaos.oracle._router import _pick
from meshchaos.oracle.topology import BOOKINFO

RATINGS_DELAY = vs(
    "ratings",
    "  - fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}\n"
    "    route: [{destination: {host: ratings}}]\n",
)
PAGE = RequestClass(concurrency=12)


def test_orders_of_three_single_hosts_are_the_permutations_of_5_3_1_ninths() -> None:
    got = sorted(orders([("v1", 1), ("v2", 1), ("v3", 1)]))
    want = sorted(tuple(round(x / 9, 12) for x in p) for p in itertools.permutations((5, 3, 1)))
    assert got == want


def test_orders_group_hosts_of_one_version() -> None:
    # v1 has two hosts, v2 one: v2 is least busy, middle, or busiest.
    got = sorted(orders([("v1", 2), ("v2", 1)]))
    assert got == sorted(
        [
            (round(4 / 9, 12), round(5 / 9, 12)),
            (round(6 / 9, 12), round(3 / 9, 12)),
            (round(8 / 9, 12), round(1 / 9, 12)),
        ]
    )


@pytest.mark.parametrize(
    ("counts", "tried"), [((1, 1, 1), (1, 0, 0)), ((2, 1), (1, 0)), ((3, 2), (2, 1))]
)
def test_pick_with_the_host_shares_as_weights_is_the_uniform_pick(
    counts: tuple[int, ...], tried: tuple[int, ...]
) -> None:
    k = sum(counts)
    uniform = _pick(counts, tried, previous_hosts=True)
    weighted = _pick(counts, tried, previous_hosts=True, weights=[c / k for c in counts])
    assert weighted == pytest.approx(uniform, abs=1e-12)
    assert sum(uniform) == pytest.approx(1.0, abs=1e-12)


def test_unequal_latency_under_load_gives_bounds_not_exact_shares() -> None:
    p = predict(policy(RATINGS_DELAY), PAGE)
    for cls in ("reviews-v1", "reviews-v2-black", "reviews-v3-red"):
        share = p.share(cls)
        assert share is not None
        assert share.probability == pytest.approx(1 / 3, abs=1e-9)
        assert share.bounds == pytest.approx((1 / 9, 5 / 9), abs=1e-9)
    # how many ratings calls are delayed depends on the split: no exact rate is claimed
    assert "fault.delays_injected" not in p.counters
    assert "fault.delays_injected" in p.unpredictable
    assert any("LEAST_REQUEST" in line for line in p.reasoning)


def test_one_request_at_a_time_is_uniform_and_exact() -> None:
    p = predict(policy(RATINGS_DELAY), RequestClass(concurrency=1))
    share = p.share("reviews-v1")
    assert share is not None
    assert share.is_exact
    assert share.probability == pytest.approx(1 / 3, abs=1e-9)
    assert p.counters["fault.delays_injected"] == pytest.approx(2 / 3, abs=1e-9)
    assert not p.unpredictable


def test_versions_doing_different_work_are_bounded_under_load() -> None:
    # Nothing delayed, but reviews v1 skips ratings: measured at 38.5 % (763 of 1,983
    # pages at concurrency 12), not a third, so the oracle must not claim thirds.
    p = predict(load_text(DR_ALL), PAGE)
    assert {o.outcome for o in p.outcomes} == {"reviews-v1", "reviews-v2-black", "reviews-v3-red"}
    for o in p.outcomes:
        assert not o.is_exact
        assert o.bounds == pytest.approx((1 / 9, 5 / 9), abs=1e-9)
    assert any("unequal latency or work" in line for line in p.reasoning)


def test_versions_doing_the_same_work_stay_exact_under_load() -> None:
    # v2 and v3 both call ratings: nothing tells them apart, the split stays 50/50.
    both = vs(
        "reviews",
        "  - route: [{destination: {host: reviews, subset: v2}, weight: 100}]\n",
    ).replace(
        "subset: v2}, weight: 100}]",
        "subset: v2}, weight: 50}, {destination: {host: reviews, subset: v3}, weight: 50}]",
    )
    p = predict(policy(both), PAGE)
    assert all(o.is_exact for o in p.outcomes)


def test_calls_made_follow_the_topology() -> None:
    assert calls_made(BOOKINFO, "reviews", "v1", "/reviews/0") == ()
    assert calls_made(BOOKINFO, "reviews", "v2", "/reviews/0") == ("ratings",)
    assert calls_differ(BOOKINFO, "reviews", ["v1", "v2", "v3"], "/reviews/0")
    assert not calls_differ(BOOKINFO, "reviews", ["v2", "v3"], "/reviews/0")


def test_an_abort_behind_a_bounded_split_is_exact_among_the_pages_it_can_reach() -> None:
    abort = vs(
        "ratings",
        "  - fault: {abort: {httpStatus: 500, percentage: {value: 50}}}\n"
        "    route: [{destination: {host: ratings}}]\n",
    )
    p = predict(policy(abort), PAGE)
    unavailable = p.share("ratings-unavailable")
    assert unavailable is not None
    assert not unavailable.is_exact
    (cond,) = p.conditionals
    assert cond.outcome == "ratings-unavailable"
    assert set(cond.given) == {"ratings-unavailable", "reviews-v2-black", "reviews-v3-red"}
    assert cond.probability == pytest.approx(0.5, abs=1e-9)
    # v1 takes at most 5/9 of the pages, so the group gets at least 4/9
    assert cond.given_low == pytest.approx(4 / 9, abs=1e-9)


def test_conditionals_need_the_same_ratio_in_every_order() -> None:
    runs = [{"a": 0.5, "b": 0.25, "c": 0.25}, {"a": 0.1, "b": 0.45, "c": 0.45}]
    got = conditionals(runs, ["a", "b", "c"])
    # b among {b, c} is 1/2 in both orders; a has no group with a constant ratio
    assert ("b", ("b", "c"), pytest.approx(0.5), pytest.approx(0.5)) in got
    assert not [g for g in got if g[0] == "a"]


def test_one_request_at_a_time_has_no_conditionals() -> None:
    abort = vs(
        "ratings",
        "  - fault: {abort: {httpStatus: 500, percentage: {value: 50}}}\n"
        "    route: [{destination: {host: ratings}}]\n",
    )
    p = predict(policy(abort), RequestClass(concurrency=1))
    assert all(o.is_exact for o in p.outcomes)
    assert p.conditionals == ()


def test_weights_are_random_draws_not_the_balancer_so_they_stay_exact() -> None:
    split = vs(
        "reviews",
        "  - route:\n"
        "    - {destination: {host: reviews, subset: v1}, weight: 50}\n"
        "    - {destination: {host: reviews, subset: v3}, weight: 50}\n",
    )
    p = predict(policy(split + "\n---\n" + RATINGS_DELAY), PAGE)
    for cls in ("reviews-v1", "reviews-v3-red"):
        share = p.share(cls)
        assert share is not None
        assert share.is_exact
        assert share.probability == pytest.approx(0.5, abs=1e-9)


def test_round_robin_ignores_load_so_it_stays_exact() -> None:
    rr = (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: reviews}\nspec:\n  host: reviews\n"
        "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n"
        "  subsets:\n  - {name: v1, labels: {version: v1}}\n"
    )
    p = predict(policy(RATINGS_DELAY, with_drs=False) + load_text(rr), PAGE)
    assert all(o.is_exact for o in p.outcomes)
