"""Latency checks: percentiles below a limit, and latencies within a band.

They are tests too, not raw comparisons: ``p99_below(x)`` asks whether the share of
samples above ``x`` is consistent with at most 1% (one-sided exact test). Comparing the
sample p99 with ``x`` would fail a correct system whose true p99 sits just under ``x``
about half the time, and pass a broken one on a lucky draw.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from meshchaos.check import _format as fmt
from meshchaos.check._model import Check, CheckOutcome
from meshchaos.check.rates import _rate_check
from meshchaos.load.result import LoadResult, Sample
from meshchaos.oracle.prediction import LatencyBand
from meshchaos.stats.intervals import one_sided_pvalue

__all__ = ["late_share", "latency_within", "p50_below", "p99_below", "percentile_below"]


def _tail_outcome(
    name: str, k: int, n: int, allowance: float, alpha: float, what: str, detail: str
) -> CheckOutcome:
    if n == 0:
        return CheckOutcome(
            name,
            1.0,
            f"at most {fmt.percent(allowance)} {what}",
            "no samples",
            k=0,
            n=0,
            expected_low=0.0,
            expected_high=allowance,
        )
    low, high = fmt.ci_bounds(k, n, alpha)
    return CheckOutcome(
        name=name,
        pvalue=one_sided_pvalue(k, n, allowance, "greater"),
        expected=f"at most {fmt.percent(allowance)} {what}",
        observed=f"{k}/{n} {what} ({fmt.percent(k / n)})",
        interval=fmt.ci(k, n, alpha),
        detail=detail,
        k=k,
        n=n,
        expected_low=0.0,
        expected_high=allowance,
        interval_low=low,
        interval_high=high,
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
    name = f"p{q:g} below {fmt.seconds(seconds)}{who}"
    allowance = 1 - q / 100

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        values = result.latencies(outcome)
        k = sum(1 for v in values if v > seconds)
        actual = fmt.seconds(result.percentile(q, outcome))
        return _tail_outcome(
            name,
            k,
            len(values),
            allowance,
            alpha,
            f"above {fmt.seconds(seconds)}",
            f"p{q:g}={actual}",
        )

    return Check(name, evaluate)


def p50_below(seconds: float, outcome: str | None = None) -> Check:
    """The median latency is at most ``seconds`` (see :func:`percentile_below`)."""
    return percentile_below(50, seconds, outcome)


def p99_below(seconds: float, outcome: str | None = None) -> Check:
    """The 99th-percentile latency is at most ``seconds`` (see :func:`percentile_below`)."""
    return percentile_below(99, seconds, outcome)


# The largest share of a class that one stall may excuse (see latency_within).
STALL_ALLOWANCE = 0.05


def one_stall(late: Sequence[Sample]) -> tuple[int, float]:
    """The most of ``late`` in flight together at one instant, and that instant.

    A pause of the whole machine (a GC in an app, the host scheduling something else)
    delays every request in flight at that moment at once, so late samples from one
    stall are not independent: they all overlap one instant.
    """
    events = sorted(
        [(s.start, 1) for s in late] + [(s.start + s.latency, -1) for s in late],
        key=lambda e: (e[0], e[1]),  # an interval ends before one starting then begins
    )
    best, at, now = 0, 0.0, 0
    for t, step in events:
        now += step
        if now > best:
            best, at = now, t
    return best, at


def latency_within(
    band: LatencyBand,
    outcome: str | None = None,
    tail_allowance: float = 0.01,
    stall_allowance: float = STALL_ALLOWANCE,
) -> Check:
    """Latencies (of ``outcome``, or of all requests) fall within ``band``.

    A correct system may put a few samples outside (GC pauses, a loaded CI box), so
    the check fails only when the share outside significantly exceeds
    ``tail_allowance`` (one-sided exact binomial); ``tail_allowance=0`` makes any
    sample outside a failure. The binomial test assumes independent samples, which a
    stall breaks: at high concurrency one pause of the machine makes every request in
    flight late together. So the largest group of late samples that were all in flight
    at one instant counts as one stall and is left out of the count, when it is at most
    ``stall_allowance`` of the samples and no more than the load's concurrency (more
    cannot have been in flight together); the detail names it. A second stall, or one
    that makes most of the class late (a 6 s wave of 32 requests), still counts.
    """
    if not 0 <= tail_allowance < 1:
        raise ValueError(f"tail_allowance must be in [0, 1), got {tail_allowance}")
    who = outcome if outcome else "all requests"
    name = f"latency of {who} within [{fmt.seconds(band.low)}, {fmt.seconds(band.high)}]"

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        values = result.latencies(outcome)
        below = [v for v in values if v < band.low]
        above = [v for v in values if v > band.high]
        notes = []
        if below:
            notes.append(f"{len(below)} below, fastest {fmt.seconds(below[0])}")
        if above:
            notes.append(f"{len(above)} above, slowest {fmt.seconds(above[-1])}")
        k = len(below) + len(above)
        if above and tail_allowance > 0 and stall_allowance > 0:
            late = [
                s
                for s in result.samples
                if (outcome is None or s.outcome == outcome) and s.latency > band.high
            ]
            stalled, at = one_stall(late)
            if stalled <= min(stall_allowance * len(values), result.concurrency):
                k -= stalled
                notes.append(
                    f"{stalled} of them late together, in flight at {at:.3f} s: "
                    "counted as one stall"
                )
        return _tail_outcome(
            name, k, len(values), tail_allowance, alpha, "outside", "; ".join(notes)
        )

    return Check(name, evaluate)


def first_answer(samples: Sequence[Sample]) -> float:
    """When the first answer of a run came back (seconds since it began; 0 if none)."""
    return min((s.start + s.latency for s in samples), default=0.0)


def late_share(at: float, *, equals: float, among: Collection[str] | None = None) -> Check:
    """Among the requests classed as one of ``among`` (all, by default), the share that
    answered at ``at`` seconds or later is ``equals`` (two-sided exact test on that
    subsample).

    For a partial delay (``LatencySplit``): it changes no class, only how many of a
    class's requests wait for it. Requests answer ``at`` or later exactly when they took
    the delayed branch, so a delay that fires 45 % of the time instead of 50 % moves this
    share, where a latency band, which both branches fall in, cannot see it.

    The first wave is left out: the requests sent before any answer came back. A closed
    loop starts all its connections at once, so those requests reach the apps together
    and queue behind each other; at high concurrency an undelayed one can take longer
    than the delay and would count as late. Which requests are in the first wave is
    fixed before any of them draws its delay, so leaving them out biases nothing (the
    plan adds one wave to the sample for it, :func:`meshchaos.scenario.planning.plan_sample`).
    """
    group = None if among is None else frozenset(among)
    who = "all requests" if group is None else " | ".join(sorted(group))
    name = f"share answering at {fmt.seconds(at)} or later among {who}"

    def later(result: LoadResult) -> list[float]:
        first = first_answer(result.samples)
        return [
            s.latency
            for s in result.samples
            if s.start >= first and (group is None or s.outcome in group)
        ]

    def wave(result: LoadResult) -> str:
        first = first_answer(result.samples)
        sent = sum(1 for s in result.samples if s.start < first)
        return f"the first wave ({sent} sent before any answer) left out" if sent else ""

    return _rate_check(
        name,
        lambda r: sum(1 for v in later(r) if v >= at),
        equals,
        None,
        among=lambda r: len(later(r)),
        detail=wave,
    )
