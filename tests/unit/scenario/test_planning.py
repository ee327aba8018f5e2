"""Sample planning: every share a scenario judges is sized against --min-effect."""

from __future__ import annotations

import math

import pytest

from meshchaos.oracle.prediction import (
    ConditionalShare,
    LatencyBand,
    LatencySplit,
    OutcomeShare,
    Prediction,
    RequestClass,
)
from meshchaos.scenario.planning import plan_sample
from meshchaos.stats import sample_size

BAND = LatencyBand(0.0, 0.55)


def _plan(prediction: Prediction, judged: int = 0) -> int:
    return plan_sample(prediction, 0.05, 0.001, cap=100_000, floor=60, judged=judged).planned


def test_a_certain_class_needs_only_the_floor_of_evidence() -> None:
    one = Prediction(RequestClass(), (OutcomeShare("x", 1.0, BAND),))
    assert _plan(one) == sample_size(1.0, 0.05, 0.001)


def test_a_latency_split_is_sized_like_a_share_of_its_group_plus_the_first_wave() -> None:
    one = (OutcomeShare("x", 1.0, BAND),)
    page = RequestClass(concurrency=16)
    whole = Prediction(page, one, splits=(LatencySplit(0.295, 0.5, ("x",), 1.0),))
    # two checks (the class's share, the split) share the level; the split leaves the
    # 16 requests of the first wave out
    assert _plan(whole) == sample_size(0.5, 0.05, 0.001 / 2) + 16
    # a group that takes at least a ninth of the requests needs nine times the pages
    ninth = Prediction(page, one, splits=(LatencySplit(0.295, 0.5, ("x",), 1 / 9),))
    assert _plan(ninth) == math.ceil(sample_size(0.5, 0.05, 0.001 / 2) / (1 / 9)) + 16


def test_the_level_is_shared_by_every_check_judged_together() -> None:
    split = Prediction(
        RequestClass(),
        (OutcomeShare("x", 1.0, BAND),),
        splits=(LatencySplit(0.295, 0.1, ("x",), 1.0),),
        conditionals=(ConditionalShare("x", ("x", "y"), 0.5, 0.5),),
    )
    sizing = plan_sample(split, 0.05, 0.001, cap=100_000, floor=60, judged=8)
    assert sizing.alpha == pytest.approx(0.001 / 8)
    assert sizing.planned == max(
        math.ceil(sample_size(0.5, 0.05, 0.001 / 8) / 0.5), sample_size(0.1, 0.05, 0.001 / 8)
    )
