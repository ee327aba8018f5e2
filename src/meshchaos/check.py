"""Readable checks of a load run against what the policy predicts.

    expect(result, evidence={"policy": path}).to(matches(prediction), p99_below(0.3))

Each check is an exact binomial test (see :mod:`meshchaos._check_model` for how the
combinators keep its level); ``to`` judges all checks of a call together with Holm
at the scenario's alpha and raises :class:`PolicyDeviation` listing every failure,
with expected and observed values, the interval, the p-value and the evidence.

Latency checks are tests too, not raw comparisons: ``p99_below(x)`` asks whether the
share of samples above ``x`` is consistent with at most 1% (one-sided exact test).
Comparing the sample p99 with ``x`` would fail a correct system whose true p99 sits
just under ``x`` about half the time, and pass a broken one on a lucky draw.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping

from meshchaos._check_model import Check, CheckOutcome, all_of, any_of, not_
from meshchaos._check_report import CheckReport, ChecksFailed, Expectation, collect_reports
from meshchaos.load.result import LoadResult
from meshchaos.oracle.prediction import LatencyBand, Prediction
from meshchaos.stats.intervals import (
    binomial_pvalue,
    bound_pvalue,
    clopper_pearson,
    one_sided_pvalue,
)

__all__ = [
    "Check",
    "CheckOutcome",
    "CheckReport",
    "ChecksFailed",
    "Expectation",
    "all_of",
    "any_of",
    "collect_reports",
    "counter_matches",
    "expect",
    "latency_within",
    "matches",
    "no_errors",
    "not_",
    "p50_below",
    "p99_below",
    "percentile_below",
    "share",
    "status_share",
]


def expect(result: LoadResult, *, evidence: Mapping[str, object] | None = None) -> Expectation:
    """Start a verdict on ``result``; ``evidence`` (policy file, proxy stats, ...) goes
    into the deviation message."""
    __tracebackhide__ = True
    return Expectation(result, evidence)


# --- formatting ----------------------------------------------------------------------


def _seconds(x: float) -> str:
    if math.isinf(x):
        return "∞"
    if math.isnan(x):
        return "n/a"
    return f"{x * 1000:.4g} ms" if abs(x) < 1 else f"{x:.4g} s"


def _percent(x: float) -> str:
    return f"{x * 100:.3g}%"


def _ci(k: int, n: int, alpha: float) -> str:
    lo, hi = clopper_pearson(k, n, 1 - alpha)
    return f"{100 * (1 - alpha):.6g}% CI [{lo:.3g}, {hi:.3g}]"


# --- rates ---------------------------------------------------------------------------


def _rate_check(
    name: str,
    count: Callable[[LoadResult], int],
    equals: float | None,
    between: tuple[float, float] | None,
) -> Check:
    if (equals is None) == (between is None):
        raise ValueError(f"{name}: give exactly one of equals= or between=")
    if equals is not None and not 0 <= equals <= 1:
        raise ValueError(f"{name}: equals must be in [0, 1], got {equals}")
    if between is not None and not 0 <= between[0] <= between[1] <= 1:
        raise ValueError(f"{name}: between must satisfy 0 <= low <= high <= 1, got {between}")

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        n = result.count
        k = count(result)
        if equals is not None:
            pvalue = binomial_pvalue(k, n, equals)
            expected = f"{equals:.3f}"
        else:
            assert between is not None  # for mypy: validated above
            pvalue = bound_pvalue(k, n, *between)
            expected = f"within [{between[0]:.3f}, {between[1]:.3f}]"
        return CheckOutcome(
            name=name,
            pvalue=pvalue,
            expected=expected,
            observed=f"{k / n:.3f} ({k}/{n})" if n else "no samples",
            interval=_ci(k, n, alpha) if n else "",
        )

    return Check(name, evaluate)


def share(
    outcome: str, *, equals: float | None = None, between: tuple[float, float] | None = None
) -> Check:
    """The share of requests classed ``outcome`` is ``equals`` (two-sided exact test),
    or lies ``between`` (low, high) (exact test against the nearer edge)."""
    return _rate_check(f"share of {outcome}", lambda r: r.counts()[outcome], equals, between)


def status_share(
    code: int, *, equals: float | None = None, between: tuple[float, float] | None = None
) -> Check:
    """The share of responses with HTTP status ``code`` (0: no response), as :func:`share`."""
    return _rate_check(
        f"share of status {code}", lambda r: r.status_counts()[code], equals, between
    )


def counter_matches(name: str, observed: int, expected_per_request: float, n: int) -> Check:
    """A proxy counter agrees with the ``n`` requests the client sent.

    Models the counter as one Bernoulli event per request with probability
    ``expected_per_request`` (e.g. ``fault.aborts_injected`` at 0.1), tested two-sided
    exactly. A count above ``n`` is impossible under that model and fails outright.
    Counters that can tick more than once per request (retries) are out of scope.
    """
    if not 0 <= expected_per_request <= 1:
        raise ValueError(
            f"counter {name}: expected_per_request must be in [0, 1] (one event per request "
            f"at most), got {expected_per_request}"
        )
    if n < 1 or observed < 0:
        raise ValueError(f"counter {name}: need n >= 1 and observed >= 0, got {n}, {observed}")

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        if observed > n:
            pvalue, interval = 0.0, ""
        else:
            pvalue = binomial_pvalue(observed, n, expected_per_request)
            interval = _ci(observed, n, alpha)
        return CheckOutcome(
            name=f"proxy counter {name}",
            pvalue=pvalue,
            expected=f"{expected_per_request:.3f} per request ({expected_per_request * n:g})",
            observed=f"{observed / n:.3f} per request ({observed})",
            interval=interval,
        )

    return Check(f"proxy counter {name}", evaluate)


def no_errors() -> Check:
    """No request got status 0 (no response) or 5xx.

    A zero-probability prediction is refuted by a single occurrence, so this is an
    exact test with p-value 1 or 0; it can only fail a system that really erred.
    """

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        bad = [s.status for s in result.samples if s.status == 0 or s.status >= 500]
        counts: dict[int, int] = {}
        for code in bad:
            counts[code] = counts.get(code, 0) + 1
        listing = ", ".join(f"status {c}: {m}" for c, m in sorted(counts.items()))
        return CheckOutcome(
            name="no errors",
            pvalue=0.0 if bad else 1.0,
            expected="no status 0 or 5xx",
            observed=f"{len(bad)} of {result.count}" + (f": {listing}" if listing else ""),
        )

    return Check("no errors", evaluate)


# --- latency -------------------------------------------------------------------------


def _tail_outcome(
    name: str, k: int, n: int, allowance: float, alpha: float, what: str, detail: str
) -> CheckOutcome:
    if n == 0:
        return CheckOutcome(name, 1.0, f"at most {_percent(allowance)} {what}", "no samples")
    return CheckOutcome(
        name=name,
        pvalue=one_sided_pvalue(k, n, allowance, "greater"),
        expected=f"at most {_percent(allowance)} {what}",
        observed=f"{k}/{n} {what} ({_percent(k / n)})",
        interval=_ci(k, n, alpha),
        detail=detail,
    )


def percentile_below(q: float, seconds: float, outcome: str | None = None) -> Check:
    """The ``q``-th latency percentile (0 < q < 100) is at most ``seconds``.

    Tested as: the share of samples slower than ``seconds`` is not significantly above
    ``1 - q/100`` (one-sided exact binomial at the run's alpha). With few samples it
    can only catch gross violations: size runs with
    :func:`meshchaos.stats.latency_sample_size`.
    """
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    who = f" for {outcome}" if outcome else ""
    name = f"p{q:g} below {_seconds(seconds)}{who}"
    allowance = 1 - q / 100

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        values = result.latencies(outcome)
        k = sum(1 for v in values if v > seconds)
        actual = _seconds(result.percentile(q, outcome))
        return _tail_outcome(
            name, k, len(values), allowance, alpha, f"above {_seconds(seconds)}", f"p{q:g}={actual}"
        )

    return Check(name, evaluate)


def p50_below(seconds: float, outcome: str | None = None) -> Check:
    """The median latency is at most ``seconds`` (see :func:`percentile_below`)."""
    return percentile_below(50, seconds, outcome)


def p99_below(seconds: float, outcome: str | None = None) -> Check:
    """The 99th-percentile latency is at most ``seconds`` (see :func:`percentile_below`)."""
    return percentile_below(99, seconds, outcome)


def latency_within(
    band: LatencyBand, outcome: str | None = None, tail_allowance: float = 0.01
) -> Check:
    """Latencies (of ``outcome``, or of all requests) fall within ``band``.

    A correct system may put a few samples outside (GC pauses, a loaded CI box), so
    the check fails only when the share outside significantly exceeds
    ``tail_allowance`` (one-sided exact binomial); ``tail_allowance=0`` makes any
    sample outside a failure.
    """
    if not 0 <= tail_allowance < 1:
        raise ValueError(f"tail_allowance must be in [0, 1), got {tail_allowance}")
    who = outcome if outcome else "all requests"
    name = f"latency of {who} within [{_seconds(band.low)}, {_seconds(band.high)}]"

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        values = result.latencies(outcome)
        below = [v for v in values if v < band.low]
        above = [v for v in values if v > band.high]
        notes = []
        if below:
            notes.append(f"{len(below)} below, fastest {_seconds(below[0])}")
        if above:
            notes.append(f"{len(above)} above, slowest {_seconds(above[-1])}")
        k = len(below) + len(above)
        return _tail_outcome(
            name, k, len(values), tail_allowance, alpha, "outside", "; ".join(notes)
        )

    return Check(name, evaluate)


# --- the prediction as a whole -------------------------------------------------------


def _unpredicted(predicted: Collection[str], ignore: Collection[str]) -> Check:
    name = "no unpredicted outcomes"

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        extra = {c: m for c, m in result.counts().items() if c not in predicted and c not in ignore}
        listing = ", ".join(f"{c}: {m}" for c, m in sorted(extra.items()))
        return CheckOutcome(
            name=name,
            pvalue=0.0 if extra else 1.0,
            expected="only " + ", ".join(sorted(predicted)),
            observed=listing or "none",
        )

    return Check(name, evaluate)


def matches(
    prediction: Prediction,
    *,
    latency: bool = True,
    tail_allowance: float = 0.01,
    ignore: Collection[str] = (),
) -> Check:
    """The run matches ``prediction``: every predicted share, no other class, the bands.

    Expands to one check per predicted class (exact share: two-sided exact test;
    bounded share: test against the nearer bound), one check that no unpredicted class
    occurs, and, with ``latency``, one :func:`latency_within` check per class with a
    non-trivial band. ``to`` judges all of them together with Holm.

    An unpredicted class has probability 0, so a single occurrence refutes the
    prediction exactly (no false alarm is possible if the oracle is right); an
    allowance would make the suite blind to rare real bugs such as a stray 503 from a
    misapplied retry. Classes that are harmless but not modelled go in ``ignore``;
    classes the oracle can only bound should come with bounds from the oracle.
    """
    classes: dict[str, list[float]] = {}
    exact: dict[str, bool] = {}
    for o in prediction.outcomes:
        lo, hi = o.bounds
        acc = classes.setdefault(o.outcome, [0.0, 0.0])
        acc[0] += lo
        acc[1] += hi
        exact[o.outcome] = exact.get(o.outcome, True) and o.is_exact
    checks: list[Check] = []
    for cls, (lo, hi) in classes.items():
        if exact[cls]:
            checks.append(share(cls, equals=min(1.0, lo)))
        else:
            checks.append(share(cls, between=(max(0.0, lo), min(1.0, hi))))
    checks.append(_unpredicted(set(classes), set(ignore)))
    if latency:
        for o in prediction.outcomes:
            vacuous = o.latency.low <= 0 and math.isinf(o.latency.high)
            if o.bounds[1] > 0 and not vacuous:
                checks.append(latency_within(o.latency, o.outcome, tail_allowance))
    request = prediction.request
    who = f" as {request.user}" if request.user else ""
    label = f"{request.method} {request.path}{who} from {request.source}"
    evidence: list[tuple[str, str]] = [("request class", label)]
    if prediction.reasoning:
        evidence.append(("prediction reasoning", "\n".join(prediction.reasoning)))
    group = all_of(*checks)
    return dataclasses.replace(
        group, name=f"matches prediction for {label}", evidence=tuple(evidence)
    )
