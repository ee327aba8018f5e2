"""Latency splits: a partial delay is checked by how many answers wait for it.

A delay changes no outcome class, only the mixture of latencies within one; where the
delayed and undelayed branches fall into bands with a gap between them, the share at
or above the gap is exact (:mod:`meshchaos.oracle._split`).
"""

from __future__ import annotations

import pytest
from oracle_helpers import policy, vs

from meshchaos.oracle import RequestClass, predict
from meshchaos.oracle._split import latency_splits
from meshchaos.oracle.prediction import LatencyBand, OutcomeShare

REVIEWS_V2 = vs("reviews", "  - route: [{destination: {host: reviews, subset: v2}}]\n")


def delay(host: str, percent: float, seconds: str = "300ms") -> str:
    return vs(
        host,
        f"  - fault: {{delay: {{fixedDelay: {seconds}, percentage: {{value: {percent}}}}}}}\n"
        f"    route: [{{destination: {{host: {host}}}}}]\n",
    )


def test_a_half_delay_behind_one_version_splits_its_class_in_two() -> None:
    p = predict(policy(REVIEWS_V2 + "---\n" + delay("ratings", 50)), RequestClass(concurrency=16))
    (split,) = p.splits
    assert split.given == ("reviews-v2-black",)
    assert split.probability == pytest.approx(0.5)
    assert split.given_low == pytest.approx(1.0)
    # the 300 ms timer may fire up to 5 ms early
    assert split.at == pytest.approx(0.295)
    assert any("latency split" in line for line in p.reasoning)


def test_a_delay_before_the_balancers_pick_splits_every_version_alike() -> None:
    # productpage's sidecar delays half the reviews calls, then picks a host: which host
    # does not depend on the draw, so half of all pages are late, however v1 is favoured.
    p = predict(policy(delay("reviews", 50)), RequestClass(concurrency=96))
    assert not all(o.is_exact for o in p.outcomes)
    (split,) = p.splits
    assert set(split.given) == {"reviews-v1", "reviews-v2-black", "reviews-v3-red"}
    assert split.probability == pytest.approx(0.5)
    assert split.given_low == pytest.approx(1.0)


def test_a_delay_behind_a_bounded_split_is_exact_within_each_delayed_class() -> None:
    # Only v2 and v3 call ratings: the late share of all pages depends on v1's share,
    # but half of v2's pages and half of v3's are late in every load order.
    p = predict(policy(delay("ratings", 50)), RequestClass(concurrency=12))
    got = {s.given: s for s in p.splits}
    assert set(got) == {("reviews-v2-black",), ("reviews-v3-red",)}
    for s in got.values():
        assert s.probability == pytest.approx(0.5)
        assert s.given_low == pytest.approx(1 / 9)  # the least share of one version


def test_a_full_or_absent_delay_splits_nothing() -> None:
    page = RequestClass(concurrency=16)
    assert predict(policy(REVIEWS_V2 + "---\n" + delay("ratings", 100)), page).splits == ()
    assert predict(policy(REVIEWS_V2), page).splits == ()


def _share(cls: str, p: float, *bands: tuple[float, LatencyBand]) -> OutcomeShare:
    cover = LatencyBand(min(b.low for _, b in bands), max(b.high for _, b in bands))
    return OutcomeShare(cls, p, cover, components=bands if len(bands) > 1 else ())


FAST, SLOW = LatencyBand(0.0, 0.25), LatencyBand(0.295, 0.55)


def test_classes_apart_in_latency_are_the_share_checks_business_not_a_split() -> None:
    # 200 fast and 504 slow: the gap separates whole classes, which their shares test.
    run = [_share("ok", 0.5, (0.5, FAST)), _share("timeout", 0.5, (0.5, SLOW))]
    assert latency_splits([run]) == []


def test_overlapping_bands_give_no_threshold() -> None:
    near = LatencyBand(0.2, 0.45)
    assert latency_splits([[_share("x", 1.0, (0.5, FAST), (0.5, near))]]) == []


def test_a_split_must_hold_in_every_load_order() -> None:
    order_a = [_share("x", 0.6, (0.3, FAST), (0.3, SLOW)), _share("y", 0.4, (0.4, FAST))]
    order_b = [_share("x", 0.2, (0.1, FAST), (0.1, SLOW)), _share("y", 0.8, (0.8, FAST))]
    (split,) = latency_splits([order_a, order_b])
    # over all requests the late share is 0.3 or 0.1; within x it is 1/2 in both
    assert split.given == ("x",)
    assert split.probability == pytest.approx(0.5)
    assert split.given_low == pytest.approx(0.2)
