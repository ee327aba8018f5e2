"""Every check and combinator, passing and failing, and the deviation message."""

from __future__ import annotations

import json
import math

import pytest

from meshchaos.check import (
    Check,
    CheckOutcome,
    ChecksFailed,
    all_of,
    any_of,
    collect_reports,
    counter_matches,
    expect,
    late_share,
    latency_within,
    matches,
    no_errors,
    not_,
    p50_below,
    p99_below,
    percentile_below,
    share,
    status_share,
)
from meshchaos.errors import LoadError, PolicyDeviation
from meshchaos.load.result import LoadResult, Sample
from meshchaos.oracle.prediction import (
    LatencyBand,
    LatencySplit,
    OutcomeShare,
    Prediction,
    RequestClass,
)
from meshchaos.stats import use_alpha


def make_result(
    counts: dict[str, int],
    latency: float | dict[str, float] = 0.01,
    status: dict[str, int] | None = None,
    examples: dict[str, str] | None = None,
) -> LoadResult:
    samples = []
    for outcome, count in counts.items():
        lat = latency[outcome] if isinstance(latency, dict) else latency
        code = (status or {}).get(outcome, 200)
        samples += [Sample(i * 0.01, lat, code, outcome) for i in range(count)]
    return LoadResult(
        target="http://gateway/productpage",
        samples=samples,
        duration=2.0,
        concurrency=4,
        examples=examples or {},
    )


def with_latencies(outcome: str, latencies: list[float]) -> LoadResult:
    samples = [Sample(0.0, lat, 200, outcome) for lat in latencies]
    return LoadResult("http://gateway/productpage", samples, 1.0, 1)


def passes(result: LoadResult, *checks: Check, alpha: float = 0.01) -> bool:
    try:
        expect(result).to(*checks, alpha=alpha)
    except PolicyDeviation:
        return False
    return True


def failure(result: LoadResult, *checks: Check, alpha: float = 0.01) -> str:
    with pytest.raises(PolicyDeviation) as info:
        expect(result).to(*checks, alpha=alpha)
    return str(info.value)


FIFTY_FIFTY = make_result({"reviews-v1": 50, "reviews-v3-red": 50})
SKEWED = make_result({"reviews-v1": 80, "reviews-v3-red": 20})


# --- share / status_share -------------------------------------------------------------


def test_share_equals_passes_on_consistent_data() -> None:
    report = expect(FIFTY_FIFTY).to(share("reviews-v1", equals=0.5), alpha=0.01)
    assert report.passed
    assert report.outcomes[0].pvalue == pytest.approx(1.0)


def test_share_equals_fails_with_expected_observed_interval_and_p() -> None:
    message = failure(SKEWED, share("reviews-v1", equals=0.5))
    assert "policy deviation: 1 of 1 check failed (alpha 0.01 per scenario, Holm)" in message
    assert "✗ share of reviews-v1: expected 0.500, observed 0.800 (80/100)" in message
    assert "99% CI [0.679, 0.892]" in message
    assert "p=" in message


def test_share_between() -> None:
    assert passes(SKEWED, share("reviews-v1", between=(0.7, 0.9)))
    message = failure(SKEWED, share("reviews-v1", between=(0.2, 0.6)))
    assert "expected within [0.200, 0.600], observed 0.800 (80/100)" in message


def test_share_needs_exactly_one_expectation() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        share("reviews-v1")
    with pytest.raises(ValueError, match="exactly one"):
        share("reviews-v1", equals=0.5, between=(0.4, 0.6))
    with pytest.raises(ValueError, match=r"equals must be in \[0, 1\]"):
        share("reviews-v1", equals=1.5)


def test_status_share() -> None:
    result = make_result({"ok": 90, "aborted": 10}, status={"aborted": 503})
    assert passes(result, status_share(503, equals=0.1))
    message = failure(result, status_share(503, equals=0.5))
    assert "share of status 503: expected 0.500, observed 0.100 (10/100)" in message


def test_certain_share_fails_on_one_contrary_request() -> None:
    result = make_result({"reviews-error": 99, "reviews-v1": 1})
    assert passes(make_result({"reviews-error": 100}), share("reviews-error", equals=1.0))
    assert "p=0" in failure(result, share("reviews-error", equals=1.0))


# --- no_errors / counters -------------------------------------------------------------


def test_no_errors() -> None:
    assert passes(FIFTY_FIFTY, no_errors())
    result = make_result({"ok": 97, "a": 2, "b": 1}, status={"a": 503, "b": 0})
    message = failure(result, no_errors())
    assert "✗ no errors: expected no status 0 or 5xx, observed 3 of 100" in message
    assert "status 0: 1, status 503: 2" in message


def test_no_errors_ignores_4xx() -> None:
    assert passes(make_result({"x": 10}, status={"x": 404}), no_errors())


def test_counter_matches() -> None:
    assert passes(FIFTY_FIFTY, counter_matches("fault.aborts_injected", 98, 0.1, 1000))
    message = failure(FIFTY_FIFTY, counter_matches("fault.aborts_injected", 180, 0.1, 1000))
    assert "proxy counter fault.aborts_injected: expected 0.100 per request (100)" in message
    assert "observed 0.180 per request (180)" in message


def test_counter_above_request_count_fails_outright() -> None:
    assert "p=0" in failure(FIFTY_FIFTY, counter_matches("c", 11, 1.0, 10))


def test_counter_rejects_rates_above_one() -> None:
    with pytest.raises(ValueError, match="one event per request"):
        counter_matches("upstream_rq_retry", 10, 1.5, 10)


# --- latency --------------------------------------------------------------------------


def test_p99_below_tolerates_a_few_slow_samples() -> None:
    # 2 of 1000 above 300 ms: consistent with a true p99 below 300 ms.
    result = with_latencies("ok", [0.1] * 998 + [0.5] * 2)
    assert passes(result, p99_below(0.3))


def test_p99_below_fails_on_a_significant_tail() -> None:
    result = with_latencies("ok", [0.1] * 950 + [0.5] * 50)
    message = failure(result, p99_below(0.3))
    assert "✗ p99 below 300 ms: expected at most 1% above 300 ms" in message
    assert "observed 50/1000 above 300 ms (5%)" in message
    assert "p99=500 ms" in message


def test_p99_is_a_test_not_a_raw_comparison() -> None:
    # The sample p99 (nearest rank) is above the limit, yet 2/100 above 0.3 s is
    # consistent with 1%: a raw comparison would flake here.
    result = with_latencies("ok", [0.1] * 98 + [0.31] * 2)
    assert result.percentile(99) > 0.3
    assert passes(result, p99_below(0.3))


def test_p50_and_percentile_below() -> None:
    result = with_latencies("ok", [0.1] * 25 + [0.2] * 75)
    assert passes(result, p50_below(0.25), percentile_below(90, 0.25))
    message = failure(result, p50_below(0.15))
    assert "p50 below 150 ms" in message
    with pytest.raises(ValueError, match="percentile"):
        percentile_below(0, 1.0)


def test_percentile_for_one_outcome() -> None:
    result = make_result({"fast": 100, "slow": 100}, latency={"fast": 0.01, "slow": 2.0})
    assert passes(result, p99_below(0.1, outcome="fast"))
    assert "p99 below 100 ms for slow" in failure(result, p99_below(0.1, outcome="slow"))


def test_latency_within() -> None:
    band = LatencyBand(5.995, 6.25)
    good = with_latencies("reviews-error", [6.0] * 99 + [7.0])
    assert passes(good, latency_within(band, "reviews-error"))
    bad = with_latencies("reviews-error", [6.0] * 74 + [0.01] * 13)
    message = failure(bad, latency_within(band, "reviews-error"))
    assert "✗ latency of reviews-error within [5.995 s, 6.25 s]" in message
    assert "observed 13/87 outside" in message
    assert "13 below, fastest 10 ms" in message


def test_latency_within_zero_allowance_is_strict() -> None:
    result = with_latencies("x", [0.1] * 999 + [0.5])
    assert not passes(result, latency_within(LatencyBand(0.0, 0.3), tail_allowance=0.0))


def _stalled(count: int, stalls: list[float], per_stall: int) -> LoadResult:
    """``count`` requests of 20 ms, 10 ms apart; each stall makes ``per_stall`` of the
    requests sent just before its instant finish 200 ms after it."""
    samples = [Sample(i * 0.01, 0.02, 200, "x") for i in range(count)]
    for at in stalls:
        last = round(at / 0.01)
        for i in range(last - per_stall + 1, last + 1):
            samples[i] = Sample(samples[i].start, at + 0.2 - samples[i].start, 200, "x")
    return LoadResult("t", samples, duration=count * 0.01, concurrency=per_stall)


def test_latency_within_counts_one_stall_once() -> None:
    band = LatencyBand(0.0, 0.1)
    # 40 of 1000 late together (4 %, well above the 1 % allowance): one stall, excused.
    one = _stalled(1000, [2.0], 40)
    assert passes(one, latency_within(band))
    assert "40 of them late together" in latency_within(band).evaluate(one, 0.01).detail
    # Two stalls: the second counts.
    assert not passes(_stalled(1000, [2.0, 6.0], 40), latency_within(band))
    # The same 40 late requests scattered over the run are 40 independent misses.
    spread = [Sample(i * 0.01, 0.5 if i % 25 == 0 else 0.02, 200, "x") for i in range(1000)]
    assert not passes(LoadResult("t", spread, 10.0, 4), latency_within(band))
    # A "stall" that makes more than 5 % of the class late is no stall but the system.
    assert not passes(_stalled(1000, [2.0], 80), latency_within(band))
    # A strict check excuses nothing.
    assert not passes(one, latency_within(band, tail_allowance=0.0))


def _delayed(outcome: str, fast: int, slow: int, after: float = 0.001) -> list[Sample]:
    """``fast`` answers of 20 ms and ``slow`` of 310 ms, all sent after ``after``."""
    return [Sample(after + i * 0.01, 0.02, 200, outcome) for i in range(fast)] + [
        Sample(after + i * 0.01, 0.31, 200, outcome) for i in range(slow)
    ]


# The first answer of a run: one request sent at 0 that answered at once.
OPENER = [Sample(0.0, 0.001, 200, "x")]


def test_late_share_counts_the_answers_at_or_after_the_threshold() -> None:
    result = LoadResult("t", OPENER + _delayed("x", 500, 500), 10.0, 16)
    assert passes(result, late_share(0.295, equals=0.5))
    out = late_share(0.295, equals=0.5).evaluate(result, 0.01)
    assert (out.k, out.n) == (500, 1000)  # the opener, the first wave, is left out
    assert out.name == "share answering at 295 ms or later among all requests"
    # A 50 % delay firing 45 % of the time: 450 of 1000 late.
    shifted = LoadResult("t", OPENER + _delayed("x", 550, 450), 10.0, 16)
    message = failure(shifted, late_share(0.295, equals=0.5))
    assert "observed 0.450 (450/1000)" in message
    # Exactly at the threshold counts as late: a timer cannot fire before it.
    edge = LoadResult("t", [*OPENER, Sample(0.01, 0.295, 200, "x")], 1.0, 1)
    assert late_share(0.295, equals=1.0).evaluate(edge, 0.01).k == 1


def test_late_share_leaves_the_first_wave_out() -> None:
    # 64 requests sent together at the start queue behind each other: all 400 ms late,
    # delayed or not. They were sent before the first answer came back (at 0.4 s).
    wave = [Sample(0.0, 0.4, 200, "x") for _ in range(64)]
    result = LoadResult("t", wave + _delayed("x", 500, 500, after=0.4), 10.0, 64)
    out = late_share(0.295, equals=0.5).evaluate(result, 0.01)
    assert (out.k, out.n) == (500, 1000)
    assert out.detail == "the first wave (64 sent before any answer) left out"
    assert passes(result, late_share(0.295, equals=0.5))


def test_late_share_among_a_group_ignores_other_classes() -> None:
    samples = OPENER + _delayed("reviews-v2-black", 300, 300) + _delayed("reviews-v1", 900, 0)
    result = LoadResult("t", samples, 10.0, 16)
    check = late_share(0.295, equals=0.5, among=["reviews-v2-black"])
    out = check.evaluate(result, 0.01)
    assert (out.k, out.n) == (300, 600)
    assert passes(result, check)
    assert not passes(result, late_share(0.295, equals=0.5))  # 300 of 1500 overall
    with pytest.raises(ValueError, match="equals must be in"):
        late_share(0.3, equals=1.5)


def test_matches_checks_a_latency_split() -> None:
    fast, slow = LatencyBand(0.0, 0.25), LatencyBand(0.295, 0.55)
    prediction = Prediction(
        RequestClass(),
        (
            OutcomeShare(
                "reviews-v2-black",
                1.0,
                LatencyBand(0.0, 0.55),
                components=((0.5, fast), (0.5, slow)),
            ),
        ),
        splits=(LatencySplit(0.295, 0.5, ("reviews-v2-black",), 1.0),),
    )
    names = [c.name for c in matches(prediction).leaves()]
    assert "share answering at 295 ms or later among all requests" in names
    fair = _delayed("reviews-v2-black", 500, 500, after=0.0)
    assert passes(LoadResult("t", fair, 10.0, 16), matches(prediction))
    short = _delayed("reviews-v2-black", 550, 450, after=0.0)
    assert not passes(LoadResult("t", short, 10.0, 16), matches(prediction))


def test_latency_within_no_samples_of_the_class_passes() -> None:
    # Absence of the class is the share check's business, not the band's.
    assert passes(FIFTY_FIFTY, latency_within(LatencyBand(1.0, 2.0), "reviews-v2-black"))


# --- combinators ----------------------------------------------------------------------

OK = share("reviews-v1", equals=0.5)  # passes on FIFTY_FIFTY
BAD = share("reviews-v1", equals=0.9)  # fails on FIFTY_FIFTY
BAD2 = share("reviews-v3-red", equals=0.9)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        pytest.param(all_of(OK, OK), True, id="all-of-pass-pass"),
        pytest.param(all_of(OK, BAD), False, id="all-of-pass-fail"),
        pytest.param(all_of(BAD, BAD2), False, id="all-of-fail-fail"),
        pytest.param(any_of(OK, OK), True, id="any-of-pass-pass"),
        pytest.param(any_of(OK, BAD), True, id="any-of-pass-fail"),
        pytest.param(any_of(BAD, OK), True, id="any-of-fail-pass"),
        pytest.param(any_of(BAD, BAD2), False, id="any-of-fail-fail"),
        pytest.param(not_(OK), False, id="not-pass"),
        pytest.param(not_(BAD), True, id="not-fail"),
        pytest.param(not_(not_(OK)), True, id="not-not-pass"),
        pytest.param(any_of(not_(OK), BAD), False, id="any-of-not-pass-fail"),
        pytest.param(all_of(OK, not_(BAD)), True, id="all-of-pass-not-fail"),
    ],
)
def test_combinator_truth_table(check: Check, expected: bool) -> None:
    assert passes(FIFTY_FIFTY, check) is expected
    assert check.evaluate(FIFTY_FIFTY, 0.01).passed_at(0.01) is expected


def test_any_of_is_really_or() -> None:
    # Istio's framework once had an Or that meant AND; ours must pass on one success.
    report = expect(FIFTY_FIFTY).to(any_of(BAD, OK, BAD2), alpha=0.01)
    assert report.passed
    assert report.outcomes[0].kind == "any"
    assert report.outcomes[0].pvalue == pytest.approx(1.0)  # max of the parts


def test_all_of_is_bonferroni_and_flattened_by_to() -> None:
    outcome = all_of(OK, BAD).evaluate(FIFTY_FIFTY, 0.01)
    assert outcome.pvalue == pytest.approx(min(1.0, 2 * min(p.pvalue for p in outcome.parts)))
    report_names = failure(FIFTY_FIFTY, all_of(OK, all_of(BAD, BAD2)))
    assert "3 of 3" not in report_names  # flattened: three leaves, two failed
    assert "2 of 3 checks failed" in report_names


def test_not_reports_the_inner_check() -> None:
    message = failure(FIFTY_FIFTY, not_(OK))
    assert "✗ not (share of reviews-v1): expected a deviation from: 0.500" in message
    assert "inner p=1" in message


def test_empty_combinators_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        all_of()
    with pytest.raises(ValueError, match="at least one"):
        any_of()


# --- expect / to / report -------------------------------------------------------------


def test_holm_is_applied_across_checks() -> None:
    # One p-value near alpha fails alone but not next to three clean checks.
    result = make_result({"a": 62, "b": 38})
    borderline = share("a", equals=0.5)
    p = borderline.evaluate(result, 0.05).pvalue
    assert 0.0125 < p <= 0.05
    assert not passes(result, borderline, alpha=0.05)
    clean = [no_errors(), p99_below(1.0), p50_below(1.0)]
    assert passes(result, borderline, *clean, alpha=0.05)


def test_to_uses_the_context_alpha() -> None:
    result = make_result({"a": 62, "b": 38})  # p ~ 0.02
    with use_alpha(0.05):
        assert not passes_default(result)
    with use_alpha(0.01):
        assert passes_default(result)


def passes_default(result: LoadResult) -> bool:
    try:
        expect(result).to(share("a", equals=0.5))
    except PolicyDeviation:
        return False
    return True


def test_message_lists_every_failure_then_evidence() -> None:
    result = make_result(
        {"reviews-error": 87, "reviews-v1": 13},
        latency={"reviews-error": 6.1, "reviews-v1": 0.02},
        examples={"reviews-v1": "<div>Reviewer1 ... An extremely entertaining play</div>"},
    )
    prediction = Prediction(
        RequestClass(user="jason"),
        (OutcomeShare("reviews-error", 1.0, LatencyBand(5.995, 6.25)),),
        reasoning=("reviews v2 for end-user jason", "ratings delay 7 s > 3 s app timeout x 2"),
    )
    with use_alpha(0.00025):
        message = failure_default(
            result,
            matches(prediction),
            evidence={
                "policy": "manifests/istio/fault-ratings-delay-7s-jason.yaml",
                "proxy stats": {"http.outbound.fault.delays_injected": 100},
            },
        )
    lines = message.splitlines()
    assert lines[0] == "policy deviation: 2 of 3 checks failed (alpha 0.00025 per scenario, Holm)"
    assert lines[1].startswith(
        "✗ share of reviews-error: expected 1.000, observed 0.870 (87/100), 99.975% CI ["
    )
    assert lines[2] == (
        "✗ no unpredicted outcomes: expected only reviews-error, observed reviews-v1: 13, p=0"
    )
    assert lines[3].startswith("✓ latency of reviews-error within [5.995 s, 6.25 s]")
    assert "evidence:" in lines
    assert "  policy: manifests/istio/fault-ratings-delay-7s-jason.yaml" in lines
    assert "  proxy stats: http.outbound.fault.delays_injected=100" in lines
    assert "    reviews-v1: <div>Reviewer1 ... An extremely entertaining play</div>" in lines
    assert "  request class: GET /productpage as jason from gateway" in lines
    assert "    ratings delay 7 s > 3 s app timeout x 2" in lines
    assert any(line.startswith("  load: 100 requests to http://gateway") for line in lines)


def failure_default(
    result: LoadResult, *checks: Check, evidence: dict[str, object] | None = None
) -> str:
    with pytest.raises(PolicyDeviation) as info:
        expect(result, evidence=evidence).to(*checks)
    return str(info.value)


def test_deviation_carries_the_report_and_is_an_assertion_error() -> None:
    with pytest.raises(ChecksFailed) as info:
        expect(SKEWED).to(share("reviews-v1", equals=0.5), no_errors(), alpha=0.01)
    assert isinstance(info.value, AssertionError)
    report = info.value.report
    assert report.failed == (True, False)
    record = json.loads(json.dumps(report.to_dict()))
    assert record["passed"] is False
    assert record["checks"][0]["name"] == "share of reviews-v1"
    assert record["checks"][1]["adjusted_pvalue"] == 1.0


def test_collect_reports_sees_passes_and_failures() -> None:
    with collect_reports() as reports:
        expect(FIFTY_FIFTY).to(OK, alpha=0.01)
        with pytest.raises(PolicyDeviation):
            expect(FIFTY_FIFTY).to(BAD, alpha=0.01)
    assert [r.passed for r in reports] == [True, False]


def test_to_refuses_blind_calls() -> None:
    with pytest.raises(ValueError, match="at least one check"):
        expect(FIFTY_FIFTY).to()
    with pytest.raises(LoadError, match="no samples"):
        expect(make_result({})).to(OK)
    with pytest.raises(ValueError, match="alpha"):
        expect(FIFTY_FIFTY).to(OK, alpha=1.5)


def test_negation_has_no_pvalue_in_the_record() -> None:
    outcome = not_(BAD).evaluate(FIFTY_FIFTY, 0.01)
    assert math.isnan(outcome.pvalue)
    assert outcome.to_dict()["pvalue"] is None
    assert isinstance(outcome, CheckOutcome)


# --- matches --------------------------------------------------------------------------

THREE_WAY = Prediction(
    RequestClass(),
    (
        OutcomeShare("reviews-v1", 0.5, LatencyBand(0.0, 0.1)),
        OutcomeShare("reviews-v2-black", 0.3, LatencyBand(0.0, 0.1)),
        OutcomeShare("reviews-v3-red", 0.2, LatencyBand(0.0, math.inf)),
    ),
)


def test_matches_expands_to_shares_unpredicted_and_bands() -> None:
    names = [leaf.name for leaf in matches(THREE_WAY).leaves()]
    assert names == [
        "share of reviews-v1",
        "share of reviews-v2-black",
        "share of reviews-v3-red",
        "no unpredicted outcomes",
        "latency of reviews-v1 within [0 ms, 100 ms]",
        "latency of reviews-v2-black within [0 ms, 100 ms]",
        # reviews-v3-red's band [0, inf) says nothing and is left out
    ]
    assert len(matches(THREE_WAY, latency=False).leaves()) == 4


def test_matches_passes_on_the_predicted_mixture() -> None:
    result = make_result({"reviews-v1": 500, "reviews-v2-black": 300, "reviews-v3-red": 200})
    assert passes(result, matches(THREE_WAY))


def test_matches_fails_on_a_shifted_mixture() -> None:
    result = make_result({"reviews-v1": 400, "reviews-v2-black": 400, "reviews-v3-red": 200})
    message = failure(result, matches(THREE_WAY))
    assert "✗ share of reviews-v1: expected 0.500, observed 0.400 (400/1000)" in message
    assert "✗ share of reviews-v2-black" in message
    assert "✓ share of reviews-v3-red" in message


def test_matches_ignore_set() -> None:
    result = make_result(
        {"reviews-v1": 500, "reviews-v2-black": 300, "reviews-v3-red": 199, "status:503": 1}
    )
    assert not passes(result, matches(THREE_WAY))
    assert passes(result, matches(THREE_WAY, ignore={"status:503"}))


def test_matches_bounded_share() -> None:
    prediction = Prediction(
        RequestClass(),
        (
            OutcomeShare("status:200", 0.9, LatencyBand(0, 1), low=0.8, high=0.95),
            OutcomeShare("status:503", 0.1, LatencyBand(0, 1), low=0.05, high=0.2),
        ),
    )
    assert passes(make_result({"status:200": 85, "status:503": 15}), matches(prediction))
    message = failure(make_result({"status:200": 50, "status:503": 50}), matches(prediction))
    assert "share of status:503: expected within [0.050, 0.200], observed 0.500" in message


@pytest.mark.parametrize(
    ("module", "homes"),
    [
        ("meshchaos.check", ("meshchaos.check",)),
        ("meshchaos.stats", ("meshchaos.stats.",)),
    ],
)
def test_public_names_are_complete(module: str, homes: tuple[str, ...]) -> None:
    import importlib

    mod = importlib.import_module(module)
    exported = set(mod.__all__)
    assert all(hasattr(mod, n) for n in exported)
    defined_here = {
        n
        for n in dir(mod)
        if not n.startswith("_")
        and getattr(getattr(mod, n), "__module__", "").startswith(homes)
        and not isinstance(getattr(mod, n), type(importlib))
    }
    assert defined_here <= exported


def test_custom_check() -> None:
    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        return CheckOutcome("always", 1.0, "anything", f"{result.count} requests")

    assert passes(FIFTY_FIFTY, Check("always", evaluate))
